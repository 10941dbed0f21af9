"""A stop always ends: final writes the log never finishes are abandoned, and nothing is lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from tests.integration.runtime.test_counter_service import (
    as_pairs,
    increments,
    new_counter,
    run_counter,
    wait_for,
)
from tests.support import counter
from tests.support.kafka import produce_events

import virga_runtime.runner as runner_module

pytestmark = pytest.mark.kafka


async def test_a_final_snapshot_the_log_never_commits_is_abandoned_in_time(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    inputs = increments(200, seed=11)
    await produce_events(kafka_bootstrap, in_topic, inputs)
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    await wait_for(lambda: runner.metrics.value("events_handled") == 200)

    async def never_commits(*_: Any) -> int:
        await asyncio.Event().wait()  # inside the snapshot's transaction, as a stuck commit
        return 0

    monkeypatch.setattr(runner_module, "write_snapshot", never_commits)
    monkeypatch.setattr(runner_module, "FINAL_WRITES_SECONDS", 1.0)
    runner.request_stop()
    await task
    started = time.monotonic()
    async with asyncio.timeout(60):  # before the bound, this close never returned
        await runner.close()
    assert time.monotonic() - started < 1.0 + 2 * runner_module.STOP_SECONDS
    monkeypatch.undo()

    # Nothing was lost: the next start rebuilds every count, and decides nothing again.
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    try:
        assert runner.state == counter.expected_totals(as_pairs(inputs))
        await asyncio.sleep(1.0)
        assert runner.metrics.value("events_handled") == 0
    finally:
        runner.request_stop()
        await task
        await runner.close()
