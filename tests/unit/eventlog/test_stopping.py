"""Closing a service never waits on a client's stop for long (`stop_within`), nor dies of it."""

from __future__ import annotations

import asyncio

import pytest

from virga_eventlog.settings import KafkaSettings
from virga_eventlog.stopping import stop_within
from virga_eventlog.writer import EventWriter, ProducerAbandoned


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


async def test_a_producer_whose_stop_cancels_itself_is_dropped_with_an_error_not_a_cancel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """aiokafka's sender awaits its own cancelled requests when the log is away: the stop then
    raises CancelledError nobody asked for, which must not pass for the caller's own (a
    gateway stopped while the log was away died of it instead of stopping)."""
    writer = EventWriter(KafkaSettings(bootstrap_servers="127.0.0.1:1"), transactional_id="t")

    async def cancelling() -> None:
        writer._producer._closed = True  # as aiokafka's own stop marks it first
        task = asyncio.ensure_future(asyncio.Event().wait())
        task.cancel()
        await task

    monkeypatch.setattr(writer._producer, "stop", cancelling)
    with pytest.raises(ProducerAbandoned, match="cancelled"):
        await writer.discard(1.0)
