"""The scheduler service against the real broker: placements, capacity, reschedules, restarts.

Each test has its own topic namespace. Agents' and the gateway's events are written with an
`EventWriter` of the test's own; the scheduler runs in process and is read back from its topic.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import orjson
import pytest
from tests.support.kafka import read_events, serving
from tests.support.ports import free_port

from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import HostHeartbeat, HostRegistered, InstanceFailed
from virga_events.catalog.scheduler import (
    ClaimReleased,
    InstanceScheduled,
    InstanceSchedulingFailed,
)
from virga_runtime import RunnerConfig, ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.service import definition

pytestmark = pytest.mark.kafka

SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=10)
ROOM = 10
"""Small instances each test host has room for (RAM: 20480 MB / 2048)."""
HOSTS = ("h1", "h2", "h3")


class Cloud:
    """One namespace on the test broker: its topics, a writer for agents' and users' events,
    and the scheduler runner(s) started on it."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.namespace = f"sch{uuid.uuid4().hex[:10]}"
        self.settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=self.namespace)
        self.writer = EventWriter(self.settings, transactional_id=f"{self.namespace}-test-writer")
        self.config = SchedulerConfig(namespace=self.namespace, heartbeat_timeout_seconds=600)

    async def write(self, service: str, *payloads: tuple[Event, str]) -> None:
        """Append ``(event, aggregate id)`` pairs to ``service``'s topic in one transaction."""
        topic = event_topic(service, self.namespace)
        async with self.writer.transaction() as txn:
            for payload, aggregate_id in payloads:
                producer = f"compute@{aggregate_id}" if service == "compute" else service
                await txn.append(
                    topic,
                    new_event(
                        payload, aggregate_id=aggregate_id, tenant_id="t-1", producer=producer
                    ),
                )

    async def register_hosts(self) -> None:
        def registered(host: str) -> HostRegistered:
            # Every host receives live migrations (tests/integration/scheduler/
            # test_migration_flow.py).
            return HostRegistered(
                rack="r1",
                zone="az1",
                vcpus=64,
                ram_mb=ROOM * 2048,
                disk_gb=1000,
                migration_uri=f"qemu+tcp://{host}/system",
            )

        await self.write("compute", *((registered(h), h) for h in HOSTS))
        await self.write("compute", *((HostHeartbeat(running=0), h) for h in HOSTS))

    async def request(self, *instance_ids: str) -> None:
        await self.write(
            "gateway", *((InstanceRequested(name=f"vm-{i}", flavor=SMALL), i) for i in instance_ids)
        )

    async def decisions(self) -> list[Envelope]:
        return await read_events(self.bootstrap, event_topic("scheduler", self.namespace), REGISTRY)

    async def wait_for(
        self, done: Callable[[list[Envelope]], bool], seconds: float = 30
    ) -> list[Envelope]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            events = await self.decisions()
            if done(events):
                return events
            if loop.time() > deadline:
                raise TimeoutError(f"not reached; the scheduler wrote {types(events)}")
            await asyncio.sleep(0.2)

    @asynccontextmanager
    async def scheduler(
        self, *, snapshot: bool = True
    ) -> AsyncIterator[ServiceRunner[SchedulerState]]:
        """A scheduler runner serving until the block ends; ``snapshot=False`` stops it as a
        crash would (no final snapshot)."""
        runner = ServiceRunner(definition(self.config), self.settings, RunnerConfig())
        # Ready: every record written before the start is decided on (hosts included),
        # so requests written now cannot overtake the hosts through another partition.
        async with serving(runner, snapshot=snapshot):
            yield runner


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    cloud = Cloud(kafka_bootstrap)
    await ensure_topics(cloud.settings, virga_topics(namespace=cloud.namespace))
    await cloud.writer.start()
    try:
        yield cloud
    finally:
        await cloud.writer.stop()


def types(events: Sequence[Envelope]) -> Counter[str]:
    return Counter(e.type for e in events)


def of_type(events: Sequence[Envelope], kind: type[Event]) -> list[Envelope]:
    return [e for e in events if isinstance(e.payload, kind)]


def decided(n: int) -> Callable[[list[Envelope]], bool]:
    """True once ``n`` instances have a placement or a refusal."""

    def done(events: list[Envelope]) -> bool:
        answered = of_type(events, InstanceScheduled) + of_type(events, InstanceSchedulingFailed)
        return len({e.aggregate_id for e in answered}) >= n

    return done


def held_claims(events: Sequence[Envelope]) -> dict[str, str]:
    """Instance -> host of every claim still held after ``events`` (in per-instance order)."""
    held: dict[str, str] = {}
    for e in events:
        if isinstance(e.payload, InstanceScheduled):
            held[e.aggregate_id] = e.payload.host
        elif isinstance(e.payload, ClaimReleased):
            held.pop(e.aggregate_id, None)
    return held


def assert_no_decision_repeated(events: Sequence[Envelope]) -> None:
    placements = Counter(
        (e.aggregate_id, e.payload.attempt) for e in of_type(events, InstanceScheduled)
    )
    assert max(placements.values()) == 1, placements.most_common(3)
    refusals = Counter(e.aggregate_id for e in of_type(events, InstanceSchedulingFailed))
    assert not refusals or max(refusals.values()) == 1, refusals.most_common(3)


async def test_requests_are_scheduled_and_spread_over_three_hosts(cloud: Cloud) -> None:
    await cloud.register_hosts()
    async with cloud.scheduler():
        await cloud.request(*(f"i{n}" for n in range(6)))
        events = await cloud.wait_for(decided(6))
    placed = of_type(events, InstanceScheduled)
    assert Counter(e.payload.host for e in placed) == {"h1": 2, "h2": 2, "h3": 2}
    assert all(e.payload.attempt == 1 and e.payload.flavor == SMALL for e in placed)
    assert all(e.tenant_id == "t-1" for e in placed)


async def test_forty_concurrent_requests_for_room_for_thirty_never_overbook(cloud: Cloud) -> None:
    await cloud.register_hosts()
    async with cloud.scheduler():
        await cloud.request(*(f"i{n:02d}" for n in range(40)))  # one transaction, 6 partitions
        events = await cloud.wait_for(decided(40))
    assert len(of_type(events, InstanceScheduled)) == 30
    refused = of_type(events, InstanceSchedulingFailed)
    assert len(refused) == 10
    assert {e.payload.reason for e in refused} == {"no host fits: 3 hosts without 2048 MB RAM free"}
    assert Counter(held_claims(events).values()) == {"h1": ROOM, "h2": ROOM, "h3": ROOM}


async def test_a_failed_spawn_is_rescheduled_elsewhere_as_attempt_two(cloud: Cloud) -> None:
    await cloud.register_hosts()
    async with cloud.scheduler():
        await cloud.request("i1")
        first = (await cloud.wait_for(decided(1)))[0]
        assert isinstance(first.payload, InstanceScheduled)
        failed_on = first.payload.host
        await cloud.write(
            "compute", (InstanceFailed(host=failed_on, phase="spawn", reason="no disk"), "i1")
        )
        events = await cloud.wait_for(lambda ev: len(of_type(ev, InstanceScheduled)) == 2)
    released = of_type(events, ClaimReleased)
    assert [(e.payload.host, e.payload.reason) for e in released] == [
        (failed_on, "spawn failed: no disk")
    ]
    again = of_type(events, InstanceScheduled)[1].payload
    assert again.attempt == 2
    assert again.host != failed_on
    assert held_claims(events) == {"i1": again.host}


async def test_a_restarted_scheduler_repeats_no_decision_and_respects_earlier_claims(
    cloud: Cloud,
) -> None:
    await cloud.register_hosts()
    async with cloud.scheduler(snapshot=False) as runner:  # stopped below as if it crashed
        await cloud.request(*(f"a{n:02d}" for n in range(20)))
        events = await cloud.wait_for(decided(20))
        victim = of_type(events, InstanceScheduled)[0]
        await cloud.write(
            "compute",
            (
                InstanceFailed(host=victim.payload.host, phase="spawn", reason="x"),
                victim.aggregate_id,
            ),
        )
        await cloud.wait_for(lambda ev: len(of_type(ev, InstanceScheduled)) == 21)
        claims_before = runner.state.claims.all()
    await cloud.request(*(f"b{n}" for n in range(5)))  # while no scheduler runs
    async with cloud.scheduler() as runner:  # rebuilds from the log alone
        await cloud.wait_for(decided(25))
        await cloud.request(*(f"c{n}" for n in range(10)))
        events = await cloud.wait_for(decided(35))
    async with cloud.scheduler() as runner:  # and from its final snapshot
        await asyncio.wait_for(runner.ready.wait(), 30)
        assert runner.rebuild_records == 0
        assert {c.instance_id for c in claims_before} <= {
            c.instance_id for c in runner.state.claims.all()
        }
        await cloud.request("d1")
        events = await cloud.wait_for(decided(36))
    assert_no_decision_repeated(events)
    held = held_claims(events)
    assert Counter(held.values()) == {"h1": ROOM, "h2": ROOM, "h3": ROOM}  # full, never over
    assert all(held.get(c.instance_id) == c.host for c in claims_before)  # nothing moved
    refused = {e.aggregate_id for e in of_type(events, InstanceSchedulingFailed)}
    assert len(refused) == 36 - 30
    assert "d1" in refused


async def test_the_scheduler_process_serves_health_and_stops_cleanly_on_sigterm(
    cloud: Cloud, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VIRGA_KAFKA_BOOTSTRAP": cloud.bootstrap,
        "VIRGA_NAMESPACE": cloud.namespace,
        "VIRGA_HTTP_PORT": str(port),
        "VIRGA_HEARTBEAT_TIMEOUT": "600",
    }
    log = tmp_path / "scheduler.log"
    await cloud.register_hosts()  # before the start: healthy means it has read them
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "virga_scheduler", env=env, stdout=out, stderr=out
        )
        try:
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    assert proc.returncode is None, log.read_text()[-3000:]
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
            await cloud.request("i1")
            events = await cloud.wait_for(decided(1))
            assert isinstance(events[0].payload, InstanceScheduled)
            assert events[0].producer == "scheduler"
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()[-3000:]
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert {"rebuilt", "ready", "stopped"} <= {line["event"] for line in lines}
