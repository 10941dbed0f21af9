"""A resize that moves hosts, as the compute agents carry it out (`core.resize`): the new
host defines the guest from its placement with the new flavor once its port is there, the
old host undefines its stopped domain only once the claim moved; undone, the old host starts
the guest again once its port is back. Over the memory driver."""

from __future__ import annotations

from dataclasses import replace

from tests.unit.compute.test_agent_migration import (
    config,
    envelope,
    payloads,
    placement,
    running_on,
)
from tests.unit.compute.test_agent_resize import BIG, FLOW, HOST, OTHER, fold, step

from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import DomainState, InstanceSpec
from virga_compute.drivers.base import DriverError
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.evacuation import evacuation_handlers
from virga_compute.effects.intents import (
    MoveIn,
    RemoveStale,
    RestartAfterResize,
    StopForResize,
)
from virga_compute.effects.resize import resize_handlers
from virga_events import Envelope
from virga_events.catalog.compute import (
    InstanceResized,
    InstanceResizeFailed,
    InstanceStarted,
)
from virga_events.catalog.flows import FlowFailed
from virga_events.catalog.network import PortBound, PortUnbound, instance_port_id
from virga_events.catalog.scheduler import (
    InstanceRedefineRequested,
    InstanceResizeRestartRequested,
    InstanceResizeStopRequested,
    ResizeClaimMoved,
)

PORT = instance_port_id("i-1")


def bound(host: str, seconds: float) -> Envelope:
    payload = PortBound(
        host=host, network_id="net-1", tap="tap-i1", mac="fa:16:3e:00:00:01", ips=("10.0.0.5",)
    )
    return envelope(payload, f"network@{host}", seconds, aggregate=PORT)


def moved_here(start: bool, *, network: str | None = None) -> InstanceRedefineRequested:
    return InstanceRedefineRequested(
        flow_id=FLOW,
        step="redefine",
        source=HOST,
        placement=replace(placement(OTHER), flavor=BIG, network=network),
        start=start,
    )


async def test_the_new_host_defines_the_moved_guest_with_the_new_flavor_and_starts_it() -> None:
    driver = MemoryComputeDriver()
    state = ComputeState(OTHER)
    asked = envelope(moved_here(True), "scheduler", 12)
    state = evolve(state, asked)
    (move,) = decide(config(OTHER), state, asked)
    assert isinstance(move, MoveIn)
    assert (move.spec.vcpus, move.spec.ram_mb, move.flavor, move.start) == (2, 512, BIG, True)
    # While it arrives, a snapshot keeps what it is to become.
    assert restore(snapshot(state)).instances["i-1"].resize_flavor == BIG
    emits = await resize_handlers(driver)[MoveIn](move)
    assert payloads(emits) == [
        InstanceResized(flow_id=FLOW, step="redefine", host=OTHER, flavor=BIG, running=True)
    ]
    assert driver.defined_size("i-1") == (2, 512)
    for emit in emits:
        state = evolve(state, envelope(emit.payload, f"compute@{OTHER}", 13))
    record = state.instances["i-1"]
    assert (record.status, record.resize_flow, record.resize_flavor) == ("running", None, None)
    assert "i-1" not in state.rebuilding
    # A re-sent request is answered the same, and defines nothing again.
    again = envelope(moved_here(True), "scheduler", 14)
    (answer,) = payloads(decide(config(OTHER), evolve(state, again), again))
    assert isinstance(answer, InstanceResized)
    assert answer.running


async def test_a_stopped_guest_is_only_defined_there_and_waits_for_its_port() -> None:
    driver = MemoryComputeDriver()
    state = ComputeState(OTHER)
    asked = envelope(moved_here(False, network="net-1"), "scheduler", 12)
    state = evolve(state, asked)
    assert decide(config(OTHER), state, asked) == ()  # its port is not here yet
    port = bound(OTHER, 13)
    state = evolve(state, port)
    (move,) = decide(config(OTHER), state, port)
    assert isinstance(move, MoveIn)
    assert [nic.tap for nic in move.spec.nics] == ["tap-i1"]
    (resized,) = payloads(await resize_handlers(driver)[MoveIn](move))
    assert isinstance(resized, InstanceResized)
    assert not resized.running
    assert driver.defined_size("i-1") == (2, 512)
    assert (await driver.get_info("i-1")).state is DomainState.SHUTOFF


async def test_a_move_the_new_host_cannot_define_leaves_nothing_there() -> None:
    driver = MemoryComputeDriver()
    driver.fail_next("spawn", DriverError("no room for its memory"))
    state = ComputeState(OTHER)
    asked = envelope(moved_here(True), "scheduler", 12)
    state = evolve(state, asked)
    (move,) = decide(config(OTHER), state, asked)
    (failed,) = payloads(await resize_handlers(driver)[MoveIn](move))
    assert isinstance(failed, InstanceResizeFailed)
    assert "no room for its memory" in failed.reason
    assert (await driver.get_info("i-1")).state is DomainState.MISSING
    state = evolve(state, envelope(failed, f"compute@{OTHER}", 13))
    assert "i-1" not in state.instances
    assert "i-1" not in state.rebuilding


async def test_the_old_host_keeps_its_stopped_domain_until_the_claim_moves_then_removes_it() -> (
    None
):
    driver = MemoryComputeDriver()
    await driver.spawn(InstanceSpec("i-1", "vm", 1, 256, (), ()))
    handlers = {**resize_handlers(driver), **evacuation_handlers(driver)}
    state = running_on(HOST)
    state, (stop,) = step(
        state, InstanceResizeStopRequested(flow_id=FLOW, step="stop", host=HOST), "scheduler", 10
    )
    state = fold(state, await handlers[StopForResize](stop), 11)
    # The move's request: the old host does nothing, its stopped domain stays as it was.
    state, intents = step(state, moved_here(True), "scheduler", 12)
    assert not intents
    assert driver.defined_size("i-1") == (1, 256)
    # The new host's answer changes nothing here either.
    done = InstanceResized(flow_id=FLOW, step="redefine", host=OTHER, flavor=BIG, running=True)
    state = evolve(state, envelope(done, f"compute@{OTHER}", 13))
    assert state.instances["i-1"].resize_flow == FLOW
    moved = ResizeClaimMoved(
        flow_id=FLOW, step="release", source=HOST, destination=OTHER, flavor=BIG
    )
    state, intents = step(state, moved, "scheduler", 14)
    assert intents == [RemoveStale("i-1", HOST)]
    assert "i-1" not in state.instances
    assert await handlers[RemoveStale](intents[0]) == []
    assert (await driver.get_info("i-1")).state is DomainState.MISSING
    # Restarted before it was gone, the agent removes it again; never starts it.
    assert RemoveStale("i-1", HOST) in on_ready(config(HOST), restore(snapshot(state)))


async def test_undone_after_the_port_left_the_old_host_starts_it_once_the_port_is_back() -> None:
    driver = MemoryComputeDriver()
    state = ComputeState(HOST)
    for event in (
        envelope(replace(placement(HOST), network="net-1"), "scheduler"),
        bound(HOST, 0.5),
        envelope(InstanceStarted(host=HOST), f"compute@{HOST}", 1),
    ):
        state = evolve(state, event)
    state, (stop,) = step(
        state, InstanceResizeStopRequested(flow_id=FLOW, step="stop", host=HOST), "scheduler", 10
    )
    await driver.spawn(InstanceSpec("i-1", "vm", 1, 256, (), ()))
    state = fold(state, await resize_handlers(driver)[StopForResize](stop), 11)
    state = evolve(state, envelope(PortUnbound(host=HOST), f"network@{HOST}", 12, PORT))
    # The undo: the restart waits for the port, which comes back after it.
    state, intents = step(
        state, InstanceResizeRestartRequested(flow_id=FLOW, host=HOST), "scheduler", 13
    )
    assert not intents
    failed = FlowFailed(subject="i-1", reason="x", compensated=("switch_port", "stop", "claim"))
    state = evolve(state, envelope(failed, "scheduler", 13, aggregate=FLOW))
    port = bound(HOST, 14)
    state = evolve(state, port)
    (restart,) = decide(config(HOST), state, port)
    assert restart == RestartAfterResize("i-1", "t-1", HOST)
    started = await resize_handlers(driver)[RestartAfterResize](restart)
    assert payloads(started) == [InstanceStarted(host=HOST)]
    state = fold(state, started, 15)
    assert driver.defined_size("i-1") == (1, 256)
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING
    # Once it runs again, a later binding of its port starts nothing.
    record = state.instances["i-1"]
    assert (record.status, record.resize_ran) == ("running", False)
