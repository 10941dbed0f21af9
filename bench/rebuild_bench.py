"""Rebuild rate of a realistic service state from 1,000,000 events, next to raw aiokafka reads.

Usage: python bench/rebuild_bench.py [--bootstrap 127.0.0.1:9092] [--events 1000000] [--runs 3]

Writes ~300-byte instance lifecycle events to a fresh topic (the service's own topic, as after
a restart), then alternates: (a) raw: read the topic with aiokafka, no decoding; (b) rebuild:
a ServiceRunner starting cold and folding every event into an instances projection. Prints the
medians and their ratio, then the restart-to-ready time from a snapshot of that state.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer

from virga_eventlog import EventWriter, KafkaSettings, TopicSpec, ensure_topics
from virga_eventlog.topics import dead_letter_topic, snapshot_topic
from virga_events import Envelope, Event, EventRegistry, encode, new_event
from virga_runtime import RunnerConfig, ServiceDefinition, ServiceRunner

REGISTRY = EventRegistry()


@REGISTRY.register("InstanceRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRequested(Event):
    name: str
    flavor: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    image: str | None
    network: str | None


@REGISTRY.register("InstanceStarted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStarted(Event):
    host: str


@REGISTRY.register("InstanceStopped")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStopped(Event):
    host: str
    reason: str


@REGISTRY.register("InstanceDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDeleted(Event):
    host: str


Projection = dict[str, dict[str, Any]]


def _requested(state: Projection, envelope: Envelope) -> None:
    payload = envelope.payload
    state[envelope.aggregate_id] = {
        "name": payload.name,
        "tenant_id": envelope.tenant_id,
        "flavor": payload.flavor,
        "status": "BUILDING",
        "host": None,
        "updated_at": envelope.occurred_at,
    }


def _status(status: str) -> Callable[[Projection, Envelope], None]:
    def apply(state: Projection, envelope: Envelope) -> None:
        record = state.get(envelope.aggregate_id)
        if record is not None:
            record["status"] = status
            record["host"] = envelope.payload.host
            record["updated_at"] = envelope.occurred_at

    return apply


# The fold as a table per event type, as services write it.
_FOLD: dict[type, Callable[[Projection, Envelope], None]] = {
    InstanceRequested: _requested,
    InstanceStarted: _status("RUNNING"),
    InstanceStopped: _status("STOPPED"),
    InstanceDeleted: _status("DELETED"),
}


def evolve(state: Projection, envelope: Envelope) -> Projection:
    """An instances projection like the gateway's: one record per instance, status by event."""
    apply = _FOLD.get(type(envelope.payload))
    if apply is not None:
        apply(state, envelope)
    return state


def definition(name: str) -> ServiceDefinition[Projection]:
    return ServiceDefinition(
        name=name,
        input_topics=(),
        output_topic=f"{name}.events",
        initial_state=dict,
        evolve=evolve,
        snapshot=lambda s: s,
        restore=lambda d: dict(d),
        registry=REGISTRY,
    )


def lifecycle(n: int, producer: str) -> Sequence[Envelope]:
    rng = random.Random(5)
    tenants = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(500)]
    live: list[str] = []
    events: list[Envelope] = []
    now = datetime(2026, 11, 1, tzinfo=UTC)
    while len(events) < n:
        roll = rng.random()
        if roll < 0.3 or not live:
            iid = str(uuid.UUID(int=rng.getrandbits(128)))
            live.append(iid)
            payload: Any = InstanceRequested(
                name=f"web-{len(events)}",
                flavor="m1.small",
                vcpus=1,
                ram_mb=2048,
                disk_gb=20,
                image="debian-12",
                network="net-default",
            )
        elif roll < 0.75:
            iid = rng.choice(live)
            payload = InstanceStarted(host=f"host-{rng.randrange(200):03d}")
        elif roll < 0.95:
            iid = rng.choice(live)
            payload = InstanceStopped(host=f"host-{rng.randrange(200):03d}", reason="user")
        else:
            iid = live.pop(rng.randrange(len(live)))
            payload = InstanceDeleted(host=f"host-{rng.randrange(200):03d}")
        events.append(
            new_event(
                payload,
                aggregate_id=iid,
                tenant_id=rng.choice(tenants),
                producer=producer,
                correlation_id=str(uuid.uuid4()),
                occurred_at=now,
            )
        )
    return events


async def write_log(settings: KafkaSettings, name: str, n: int) -> float:
    await ensure_topics(
        settings,
        [
            TopicSpec(f"{name}.events", 6),
            TopicSpec(snapshot_topic(name), 1, compacted=True),
            TopicSpec(dead_letter_topic(name), 1),
        ],
    )
    events = lifecycle(n, producer=name)
    sizes: list[int] = []
    async with EventWriter(settings, transactional_id=f"virga-{name}") as writer:
        for start in range(0, n, 20_000):
            async with writer.transaction() as txn:
                for envelope in events[start : start + 20_000]:
                    chained = await txn.append(f"{name}.events", envelope)
                    if len(sizes) < 1000:
                        sizes.append(len(encode(chained)))
    return statistics.mean(sizes)


async def raw_read(settings: KafkaSettings, topic: str, n: int) -> float:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    started = time.perf_counter()
    count = 0
    try:
        while count < n:
            batches = await consumer.getmany(timeout_ms=500)
            count += sum(len(records) for records in batches.values())
    finally:
        elapsed = time.perf_counter() - started
        await consumer.stop()
    return count / elapsed


async def rebuild(
    settings: KafkaSettings, name: str, n: int, *, snapshot: bool
) -> tuple[float, int]:
    runner = ServiceRunner(definition(name), settings, RunnerConfig(snapshot_every_events=10**9))
    started = time.perf_counter()
    await runner.start()
    await runner.ready.wait()
    elapsed = time.perf_counter() - started
    assert runner.events_applied == n, runner.events_applied
    size = len(runner.state)
    await runner.close(snapshot=snapshot)
    return elapsed, size


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = KafkaSettings(bootstrap_servers=args.bootstrap)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    mean_size = await write_log(settings, name, args.events)
    print(
        f"wrote {args.events:,} events (mean {mean_size:.0f} bytes) "
        f"in {time.perf_counter() - started:.1f} s"
    )

    raw_rates, rebuild_rates = [], []
    for _ in range(args.runs):
        raw_rates.append(await raw_read(settings, f"{name}.events", args.events))
        seconds, instances = await rebuild(settings, name, args.events, snapshot=False)
        rebuild_rates.append(args.events / seconds)
    raw, rebuilt = statistics.median(raw_rates), statistics.median(rebuild_rates)
    print(f"raw aiokafka read (no decode), median of {args.runs}: {raw:>10,.0f} events/s")
    print(f"rebuild (decode+validate+fold), median of {args.runs}: {rebuilt:>10,.0f} events/s")
    print(f"ratio rebuild/raw: {rebuilt / raw:.2f}   (instances in state: {instances:,})")

    await rebuild(settings, name, args.events, snapshot=True)  # leaves a snapshot behind
    restarts = [
        (await rebuild(settings, name, args.events, snapshot=False))[0] for _ in range(args.runs)
    ]
    print(
        f"restart to ready from a snapshot at {args.events:,} events, median: "
        f"{statistics.median(restarts):.2f} s"
    )


if __name__ == "__main__":
    asyncio.run(main())
