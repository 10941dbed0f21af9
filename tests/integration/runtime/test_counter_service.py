"""The runtime against the real broker: crashes, snapshots, dead letters, health."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiokafka.errors import KafkaError
from tests.support import counter
from tests.support.kafka import produce_events, produce_raw, read_all, read_events
from tests.support.ports import free_port

from virga_eventlog import KafkaSettings, LogReader, read_dead_letter
from virga_eventlog.topics import dead_letter_topic, snapshot_topic
from virga_events import Envelope, new_event
from virga_runtime import RunnerConfig, ServiceRunner
from virga_runtime.rebuild import committed_offsets
from virga_runtime.snapshots import load_snapshot

pytestmark = pytest.mark.kafka

COUNTER_SCRIPT = Path(counter.__file__)


def increments(n: int, keys: int = 40, seed: int = 7) -> list[Envelope]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        key = f"k{rng.randrange(keys)}"
        out.append(
            new_event(
                counter.Incremented(key=key, amount=rng.randint(1, 5)),
                aggregate_id=key,
                tenant_id=None,
                producer="test",
            )
        )
    return out


def as_pairs(events: list[Envelope]) -> list[tuple[str, int]]:
    pairs = []
    for e in events:
        assert isinstance(e.payload, counter.Incremented)
        pairs.append((e.payload.key, e.payload.amount))
    return pairs


async def new_counter(bootstrap: str) -> tuple[str, str]:
    name = f"counter-{uuid.uuid4().hex[:8]}"
    in_topic = f"{name}.in"
    await counter.create_topics(KafkaSettings(bootstrap_servers=bootstrap), name, in_topic)
    return name, in_topic


async def wait_for(predicate: Callable[[], bool], seconds: float = 60.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


def check_outputs(outputs: list[Envelope], inputs: list[Envelope]) -> None:
    """One CountChanged per increment, and each key's totals are its running sums, in order."""
    assert len(outputs) == len(inputs)
    assert len({o.event_id for o in outputs}) == len(outputs)
    assert {o.causation_id for o in outputs} == {i.event_id for i in inputs}
    running: dict[str, list[int]] = {}
    for key, amount in as_pairs(inputs):
        sums = running.setdefault(key, [])
        sums.append((sums[-1] if sums else 0) + amount)
    seen: dict[str, list[int]] = {}
    for o in outputs:
        assert isinstance(o.payload, counter.CountChanged)
        seen.setdefault(o.payload.key, []).append(o.payload.total)
    assert seen == running


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def wait_healthy(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert proc.returncode is None, tail(log)
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("the counter never became healthy")


@pytest.mark.slow
async def test_sigkill_at_random_moments_loses_nothing_and_applies_nothing_twice(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    out_topic = f"{name}.out"
    inputs = increments(10_000)
    rng = random.Random(int(os.environ.get("VIRGA_CHAOS_SEED", "11")))
    port = free_port()
    cmd = [sys.executable, str(COUNTER_SCRIPT), kafka_bootstrap, name, in_topic, "700", str(port)]
    env = {**os.environ, "PYTHONPATH": str(COUNTER_SCRIPT.parents[2])}
    log = tmp_path / "counter.log"
    log_file = log.open("wb")

    async def spawn() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(*cmd, env=env, stdout=log_file, stderr=log_file)

    async def feed() -> None:  # the input keeps arriving while the service is killed
        for i in range(0, len(inputs), 500):
            await produce_events(kafka_bootstrap, in_topic, inputs[i : i + 500])
            await asyncio.sleep(0.4)

    feeder = asyncio.create_task(feed())
    outputs_seen = []
    for _ in range(5):
        proc = await spawn()
        await asyncio.sleep(rng.uniform(1.5, 3.5))
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 10)
        outputs_seen.append(len(await read_all(kafka_bootstrap, out_topic)))
    await feeder
    proc = await spawn()
    try:
        await wait_healthy(port, proc, log)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while len(await read_all(kafka_bootstrap, out_topic)) < len(inputs):
            assert proc.returncode is None, tail(log)
            assert loop.time() < deadline, "the counter did not catch up"
            await asyncio.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
        log_file.close()
        assert code == 0, tail(log)

    # The kills landed while work was under way, not after it was all done.
    assert outputs_seen[0] < len(inputs)
    assert len(set(outputs_seen)) > 1
    check_outputs(await read_events(kafka_bootstrap, out_topic, counter.REGISTRY), inputs)
    # The graceful stop wrote a final snapshot: the service's own state equals the fold.
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    snap = await load_snapshot(settings, snapshot_topic(name), name)
    assert snap is not None
    assert counter.snapshot_state(snap.state) == counter.expected_totals(as_pairs(inputs))
    assert snap.chain[0] == len(inputs)  # one chained event per increment, no gaps


async def run_counter(
    bootstrap: str, name: str, in_topic: str, state_version: int = 1, **config: object
) -> tuple[ServiceRunner[counter.Totals], asyncio.Task[None]]:
    runner = ServiceRunner(
        dataclasses.replace(counter.definition(name, in_topic), state_version=state_version),
        KafkaSettings(bootstrap_servers=bootstrap),
        RunnerConfig(**config),  # type: ignore[arg-type]
    )
    await runner.start()
    return runner, asyncio.create_task(runner.serve())


async def stop(
    runner: ServiceRunner[counter.Totals], task: asyncio.Task[None], *, snapshot: bool = True
) -> None:
    runner.request_stop()
    await task
    await runner.close(snapshot=snapshot)


async def test_restart_from_snapshot_reads_only_the_tail(kafka_bootstrap: str) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    first, later = increments(1000, seed=1), increments(300, seed=2)
    await produce_events(kafka_bootstrap, in_topic, first)
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    await wait_for(lambda: runner.metrics.value("events_handled") == 1000)
    await stop(runner, task)  # graceful: final snapshot at 1000 inputs

    await produce_events(kafka_bootstrap, in_topic, later)
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    assert runner.rebuild_records == 0  # everything before the snapshot came from it
    await wait_for(lambda: runner.metrics.value("events_handled") == 300)
    await stop(runner, task, snapshot=False)  # a crash: no snapshot of the last 300

    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    try:
        # Only the tail since the snapshot: 300 inputs and the 300 outputs they caused.
        assert runner.rebuild_records == 600
        assert runner.ready.is_set()
        assert runner.state == counter.expected_totals(as_pairs(first + later))
    finally:
        await stop(runner, task)


async def test_a_snapshot_of_another_state_version_is_ignored_and_the_log_rebuilds(
    kafka_bootstrap: str,
) -> None:
    """A release that changes its state's shape raises `state_version`: it starts from the
    log, not from a snapshot it would misread, and writes snapshots of its own version."""
    name, in_topic = await new_counter(kafka_bootstrap)
    inputs = increments(500, seed=3)
    await produce_events(kafka_bootstrap, in_topic, inputs)
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    await wait_for(lambda: runner.metrics.value("events_handled") == 500)
    await stop(runner, task)  # a version-1 snapshot

    runner, task = await run_counter(kafka_bootstrap, name, in_topic, state_version=2)
    assert runner.rebuild_records == 1000  # the 500 inputs and their 500 outputs, from the log
    assert runner.state == counter.expected_totals(as_pairs(inputs))
    await stop(runner, task)  # a version-2 snapshot

    runner, task = await run_counter(kafka_bootstrap, name, in_topic, state_version=2)
    try:
        assert runner.rebuild_records == 0
        assert runner.state == counter.expected_totals(as_pairs(inputs))
    finally:
        await stop(runner, task)


async def test_inputs_that_decide_nothing_are_committed_once_quiet_and_never_redecided(
    kafka_bootstrap: str,
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    zeros = [
        new_event(
            counter.Incremented(key=f"k{i % 7}", amount=0),
            aggregate_id=f"k{i % 7}",
            tenant_id=None,
            producer="test",
        )
        for i in range(30)
    ]
    counted = increments(5, seed=4)
    await produce_events(kafka_bootstrap, in_topic, counted)
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    try:
        await wait_for(lambda: runner.metrics.value("events_handled") == 5)
        await produce_events(kafka_bootstrap, in_topic, zeros)  # batches that write nothing
        async with LogReader(settings, [in_topic], client_id="t-ends") as reader:
            inputs, ends = reader.partitions(), await reader.end_offsets()
        await wait_for(lambda: runner.metrics.value("events_handled") == 35)
        outputs = await read_events(kafka_bootstrap, f"{name}.out", counter.REGISTRY)
        check_outputs(outputs, counted)
        # Offsets held back with no output to ride on are committed when the inputs go quiet.
        for _ in range(100):
            committed = await committed_offsets(settings, runner.group_id, inputs, "t-admin")
            if all(committed.get(tp, 0) >= ends[tp] for tp in inputs):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"offsets never committed: {committed} < {ends}")
    finally:
        await stop(runner, task, snapshot=False)  # a crash: only the committed offsets count

    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    try:
        assert runner.rebuild_records == 35 + 5  # every input was decided before the crash
        await asyncio.sleep(0.5)
        assert runner.metrics.value("events_handled") == 0
    finally:
        await stop(runner, task)


async def test_bad_records_go_to_the_dead_letter_topic_and_processing_goes_on(
    kafka_bootstrap: str,
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    good = increments(20, seed=3)
    unknown = (
        b'{"event_id":"e-x","type":"Decremented","version":1,"aggregate_id":"k1",'
        b'"tenant_id":null,"occurred_at":"2026-11-23T00:00:00Z","producer":"t",'
        b'"correlation_id":"c","causation_id":null,"payload":{"key":"k1"}}'
    )
    await produce_events(kafka_bootstrap, in_topic, good[:10])
    await produce_raw(kafka_bootstrap, in_topic, [(b"k1", b"\x00not json"), (b"k1", unknown)])
    await produce_events(kafka_bootstrap, in_topic, good[10:])
    runner, task = await run_counter(kafka_bootstrap, name, in_topic)
    try:
        await wait_for(lambda: runner.metrics.value("events_handled") == 20)
        assert runner.state == counter.expected_totals(as_pairs(good))
        letters: list[dict[str, Any]] = []
        for _ in range(100):  # committed with the batch; wait for the last stable offset
            records = await read_all(kafka_bootstrap, dead_letter_topic(name))
            letters = [read_dead_letter(r.value) for r in records if r.value]
            if len(letters) >= 2:
                break
            await asyncio.sleep(0.1)
        reasons = sorted(letter["reason"] for letter in letters)
        assert len(reasons) == 2
        assert reasons[0].startswith("not JSON")
        assert reasons[1] == "unknown event type 'Decremented'"
        assert {letter["value"] for letter in letters} == {b"\x00not json", unknown}
        assert runner.metrics.value("dead_letters") == 2
    finally:
        await stop(runner, task)


async def test_healthz_is_200_only_when_caught_up_and_metrics_are_exposed(
    kafka_bootstrap: str,
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    await produce_events(kafka_bootstrap, in_topic, increments(2000, seed=4))
    runner = ServiceRunner(
        counter.definition(name, in_topic),
        KafkaSettings(bootstrap_servers=kafka_bootstrap),
        RunnerConfig(http_port=0, max_batch_records=50),
    )
    await runner.start()
    url = f"http://127.0.0.1:{runner.http_port}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/healthz") as response:
            assert response.status == 503  # 2000 inputs not yet decided
        task = asyncio.create_task(runner.serve())
        try:
            await asyncio.wait_for(runner.ready.wait(), 60)
            async with http.get(f"{url}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{url}/metrics") as response:
                text = await response.text()
            assert f'virga_events_handled_total{{service="{name}"}} 2000.0' in text
            assert "virga_rebuild_seconds" in text
            assert "virga_consumer_lag" in text
            assert "virga_dead_letters_total" in text
        finally:
            await stop(runner, task)


async def test_a_second_instance_fences_the_first_and_only_its_decisions_count(
    kafka_bootstrap: str,
) -> None:
    name, in_topic = await new_counter(kafka_bootstrap)
    first, later = increments(200, seed=5), increments(100, seed=6)
    await produce_events(kafka_bootstrap, in_topic, first)
    stale, stale_task = await run_counter(kafka_bootstrap, name, in_topic)
    await wait_for(lambda: stale.metrics.value("events_handled") == 200)
    fresh, fresh_task = await run_counter(kafka_bootstrap, name, in_topic)  # same transactional id
    try:
        await produce_events(kafka_bootstrap, in_topic, later)
        # The stale instance's next transaction is refused, and it stops instead of writing.
        with pytest.raises(KafkaError, match=r"(?i)fenc"):
            await asyncio.wait_for(stale_task, 30)
        await wait_for(lambda: fresh.metrics.value("events_handled") == 100)
        outputs = await read_events(kafka_bootstrap, f"{name}.out", counter.REGISTRY)
        check_outputs(outputs, first + later)
        assert fresh.state == counter.expected_totals(as_pairs(first + later))
    finally:
        await stale.close(snapshot=False)
        await stop(fresh, fresh_task)
