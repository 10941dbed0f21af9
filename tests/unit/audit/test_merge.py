"""`EventTimeMerge`: partitions read at any pace, each a little out of order, come out in
exactly the order of sorting everything, holding only a window of event time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from virga_audit.merge import EventTimeMerge, Partition
from virga_events import Envelope, new_event
from virga_events.catalog.compute import HostHeartbeat

T0 = datetime(2026, 11, 23, tzinfo=UTC)


def beat(seconds: float, producer: str, seq: int) -> Envelope:
    at = T0 + timedelta(seconds=seconds)
    envelope = new_event(
        HostHeartbeat(running=0),
        aggregate_id="h1",
        tenant_id=None,
        producer=producer,
        occurred_at=at,
    )
    return envelope.chained(seq, "")


def partitions(rng: random.Random, events: int, count: int) -> dict[Partition, list[Envelope]]:
    """`count` partitions of one event a second each; every 50 events of a partition, a
    second producer's 10 events go back up to 30 s (two clocks, a late transaction)."""
    out: dict[Partition, list[Envelope]] = {}
    for p in range(count):
        records: list[Envelope] = []
        for i in range(events):
            late = i % 50 < 10 and i > 50
            at = i * count + p - (rng.randrange(30) if late else 0)
            records.append(beat(at, f"p{p}-{'b' if late else 'a'}", i + 1))
        out[("t", p)] = records
    return out


def merged(rng: random.Random, logs: dict[Partition, list[Envelope]]) -> tuple[list[Envelope], int]:
    """Read the partitions as the audit's reader does: a random few records of a random
    unpaused partition per round, pausing what `ahead` names."""
    merge = EventTimeMerge(window=timedelta(seconds=20))
    for partition, records in logs.items():
        back = max(
            (max(r.occurred_at for r in records[:i]) - records[i].occurred_at)
            for i in range(1, len(records))
        )
        merge.open(partition, records[0].occurred_at, max(back, timedelta(0)))
    positions = dict.fromkeys(logs, 0)
    out: list[Envelope] = []
    while positions:
        ahead = merge.ahead()
        readable = [p for p in positions if p not in ahead]
        assert readable, "the slowest partition is never paused"
        partition = rng.choice(readable)
        start = positions[partition]
        for envelope in logs[partition][start : start + rng.randrange(1, 40)]:
            merge.push(partition, envelope)
            positions[partition] += 1
        if positions[partition] == len(logs[partition]):
            del positions[partition]
            merge.close(partition)
        out += merge.release()
    assert merge.late == 0
    return out + merge.drain(), merge.peak


def key(envelope: Envelope) -> tuple[datetime, str, int]:
    return (envelope.occurred_at, envelope.producer, envelope.seq)


def test_partitions_out_of_order_come_out_as_a_sort_of_everything() -> None:
    rng = random.Random(3)
    logs = partitions(rng, 400, 5)
    out, _ = merged(rng, logs)
    everything = [e for records in logs.values() for e in records]
    assert [key(e) for e in out] == sorted(key(e) for e in everything)


def test_what_is_held_does_not_grow_with_the_log() -> None:
    rng = random.Random(5)
    _, short = merged(rng, partitions(rng, 500, 4))
    _, long = merged(rng, partitions(rng, 4000, 4))
    # A window of 20 s plus 30 s of disorder, at 4 events a second, plus one read of 40.
    assert long <= 4 * (20 + 30 + 40) + 40, long
    assert long <= short * 1.5, (short, long)


def test_an_event_older_than_the_partition_promised_is_counted_late() -> None:
    merge = EventTimeMerge()
    merge.open(("t", 0), T0, timedelta(0))
    merge.open(("t", 1), T0, timedelta(0))
    merge.push(("t", 0), beat(10, "a", 1))
    merge.push(("t", 0), beat(12, "a", 2))
    merge.push(("t", 1), beat(20, "b", 1))
    assert [e.seq for e in merge.release()] == [1]  # before 12 s, where t0 is now
    merge.push(("t", 1), beat(5, "b", 2))  # t1 went back further than its disorder (0)
    assert merge.late == 1
