"""The signals of `core.power`: the driver's lifecycle events, and power-state syncs.

A sync reads every domain's state through the driver (`list_instances`): every
`power_sync_seconds`, and at once after the driver's event stream reconnected to the
hypervisor, as changes made while nobody listened were never reported (tried up to 10 times a
second apart). A periodic sync that fails (the hypervisor is away) is logged and tried again
at the next interval or reconnection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import structlog

from virga_compute.core.power import GuestSignal, PowerSynced
from virga_compute.drivers.base import ComputeDriver, DriverError, Reconnected

log = structlog.get_logger(__name__)

RECONNECT_ATTEMPTS = 10
RETRY_SECONDS = 1.0


async def guest_signals(driver: ComputeDriver, sync_seconds: float) -> AsyncIterator[GuestSignal]:
    """Power changes as the driver reports them, and a `PowerSynced` per sync, in order."""
    queue: asyncio.Queue[GuestSignal] = asyncio.Queue()

    async def sync(why: str, attempts: int = 1) -> None:
        for attempt in range(1, attempts + 1):
            at = datetime.now(UTC)  # before reading: an outcome recorded meanwhile is newer
            try:
                found = await driver.list_instances()
            except DriverError as exc:
                log.warning("power_sync_failed", why=why, attempt=attempt, error=str(exc))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            queue.put_nowait(PowerSynced(tuple(found), at))
            return

    async def listen() -> None:
        async for event in driver.guest_events():
            if isinstance(event, Reconnected):
                # The driver's own connection may still be the broken one: its first call
                # drops it, the next one reconnects.
                await sync("reconnected", RECONNECT_ATTEMPTS)
            else:
                log.info(
                    "guest_power_changed",
                    instance_id=event.instance_id,
                    state=event.state.value,
                    cause=event.cause,
                )
                queue.put_nowait(event)

    async def periodically() -> None:
        while True:
            await asyncio.sleep(sync_seconds)
            await sync("periodic")

    workers = [asyncio.create_task(listen()), asyncio.create_task(periodically())]
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait([getting, *workers], return_when=asyncio.FIRST_COMPLETED)
            for worker in workers:
                if worker.done():  # a bug in a worker must not silence the power signals
                    getting.cancel()
                    worker.result()
                    raise RuntimeError("the guest event stream ended")
            yield await getting
    finally:
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
