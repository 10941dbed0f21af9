"""The per-tenant gates: creates pass together, a deletion alone, and a waiting deletion goes
before creates that come after it."""

from __future__ import annotations

import asyncio

from virga_gateway.gates import TenantGates


async def test_sharers_pass_together_and_an_exclusive_holder_waits_for_them() -> None:
    gates, order = TenantGates(), []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def create(name: str) -> None:
        async with gates.shared(["t1"]):
            order.append(f"{name} in")
            first_in.set()
            await release.wait()
            order.append(f"{name} out")

    async def delete() -> None:
        async with gates.exclusive("t1"):
            order.append("delete")

    async def late_create() -> None:
        async with gates.shared(["t1"]):
            order.append("late in")

    creates = [asyncio.create_task(create(n)) for n in ("a", "b")]
    await first_in.wait()
    await asyncio.sleep(0)
    deleting = asyncio.create_task(delete())
    await asyncio.sleep(0)
    late = asyncio.create_task(late_create())
    other = asyncio.create_task(gates.shared(["t2"]).__aenter__())
    await asyncio.wait_for(other, 1)  # another tenant's gate is free
    for _ in range(5):
        await asyncio.sleep(0)
    assert order == ["a in", "b in"]  # the deletion waits for both; the late create for it
    release.set()
    await asyncio.wait_for(asyncio.gather(*creates, deleting, late), 1)
    assert order == ["a in", "b in", "a out", "b out", "delete", "late in"]


async def test_a_cancelled_waiting_deletion_lets_sharers_through_and_gates_are_forgotten() -> None:
    gates = TenantGates()
    held, release = asyncio.Event(), asyncio.Event()

    async def create() -> None:
        async with gates.shared(["t1"]):
            held.set()
            await release.wait()

    async def delete() -> None:
        async with gates.exclusive("t1"):
            pass

    creating = asyncio.create_task(create())
    await held.wait()
    deleting = asyncio.create_task(delete())
    await asyncio.sleep(0)
    late_entered = asyncio.Event()

    async def late() -> None:
        async with gates.shared(["t1"]):
            late_entered.set()

    waiting = asyncio.create_task(late())
    await asyncio.sleep(0)
    assert not late_entered.is_set()
    deleting.cancel()
    await asyncio.wait_for(late_entered.wait(), 1)
    release.set()
    await asyncio.wait_for(asyncio.gather(creating, waiting), 1)
    assert gates._gates == {}
