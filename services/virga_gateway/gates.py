"""Per-tenant gates: many requests that give a tenant something pass together, its deletion
passes alone.

A request that gives a tenant something (a resource, a share of its quotas) holds the tenant's
gate shared from before it checks the tenant until its events are in the projection; the
tenant's deletion holds it exclusive. So the deletion decides on a state that holds every
accepted create, and a create that waited for the deletion finds the tenant deleted. Creates of
one tenant still append in parallel (only a limit makes them queue, `writes.py`). A waiting
deletion goes before creates that come after it, so a busy tenant cannot starve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class _Gate:
    condition: asyncio.Condition = field(default_factory=asyncio.Condition)
    sharing: int = 0
    excluding: bool = False
    waiting_to_exclude: int = 0
    users: int = 0


class TenantGates:
    """One shared/exclusive gate per tenant, forgotten once nobody holds or waits for it."""

    def __init__(self) -> None:
        self._gates: dict[str, _Gate] = {}

    @asynccontextmanager
    async def shared(self, tenant_ids: Iterable[str]) -> AsyncIterator[None]:
        """Run the block while no deletion of any of `tenant_ids` runs (taken in sorted order)."""
        async with AsyncExitStack() as held:
            for tenant_id in sorted(set(tenant_ids)):
                await held.enter_async_context(self._hold(tenant_id, exclusive=False))
            yield

    @asynccontextmanager
    async def exclusive(self, tenant_id: str | None) -> AsyncIterator[None]:
        """Run the block alone at `tenant_id`'s gate; None holds nothing."""
        if tenant_id is None:
            yield
            return
        async with self._hold(tenant_id, exclusive=True):
            yield

    @asynccontextmanager
    async def _hold(self, tenant_id: str, *, exclusive: bool) -> AsyncIterator[None]:
        gate = self._gates.setdefault(tenant_id, _Gate())
        gate.users += 1
        try:
            async with gate.condition:
                if exclusive:
                    gate.waiting_to_exclude += 1
                    try:
                        await gate.condition.wait_for(
                            lambda: not gate.excluding and not gate.sharing
                        )
                    finally:
                        gate.waiting_to_exclude -= 1
                        gate.condition.notify_all()  # sharers held back by this waiter
                    gate.excluding = True
                else:
                    await gate.condition.wait_for(
                        lambda: not gate.excluding and not gate.waiting_to_exclude
                    )
                    gate.sharing += 1
            try:
                yield
            finally:
                async with gate.condition:
                    if exclusive:
                        gate.excluding = False
                    else:
                        gate.sharing -= 1
                    gate.condition.notify_all()
        finally:
            gate.users -= 1
            if not gate.users:
                del self._gates[tenant_id]
