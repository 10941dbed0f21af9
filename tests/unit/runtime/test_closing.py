"""Closing a service never waits on a client's stop for long (`stop_within`)."""

from __future__ import annotations

import asyncio

from virga_runtime.runner import stop_within


async def test_a_stop_that_ends_is_waited_for() -> None:
    stopped: list[bool] = []

    async def stop() -> None:
        await asyncio.sleep(0)
        stopped.append(True)

    assert await stop_within(stop(), 1.0) is None
    assert stopped == [True]


async def test_a_stuck_stop_is_abandoned_in_time() -> None:
    async def stop() -> None:
        await asyncio.Event().wait()

    started = asyncio.get_running_loop().time()
    assert await stop_within(stop(), 0.1) == "still stopping after 0.1 s"
    assert asyncio.get_running_loop().time() - started < 1.0


async def test_a_stop_that_fails_or_cancels_itself_is_reported_not_raised() -> None:
    async def failing() -> None:
        raise ConnectionError("broker gone")

    async def cancelling() -> None:  # aiokafka's consumer awaits its own cancelled fetches
        task = asyncio.ensure_future(asyncio.Event().wait())
        task.cancel()
        await task

    assert await stop_within(failing(), 1.0) == "ConnectionError('broker gone')"
    assert await stop_within(cancelling(), 1.0) == "cancelled"
