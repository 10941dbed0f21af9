"""`audit check` and `audit verify` stream the log: what they hold does not grow with how many
resources have come and gone (a log of N create/delete cycles against one of 4N), and `check`
finds exactly what sorting the whole log by event time finds, on a real broker."""

from __future__ import annotations

import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from virga_audit import ChainChecker, check, invariants, quotas, verify
from virga_audit.check import DEFAULT_STUCK_AFTER, quota_violations
from virga_audit.log import event_topics, read_topics
from virga_audit.merge import EventTimeMerge
from virga_eventlog import SERVICES, EventWriter, KafkaSettings, TopicSpec, ensure_topics
from virga_eventlog import event_topic as topic_of
from virga_events import REGISTRY, Envelope, Event, decode, new_event
from virga_events.catalog import Flavor, api, compute, network, scheduler, storage
from virga_events.catalog.quotas import TenantQuotaSet
from virga_scheduler.config import SchedulerConfig

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
SMALL = Flavor(name="m1.small", vcpus=2, ram_mb=2048, disk_gb=20)
CHUNK = 400
"""Events written per round, each producer's in one transaction: as the bench writes, a
partition shared by several producers goes back in time by up to a round."""


def cycles(n: int) -> Iterator[Envelope]:
    """`n` instances created (volume, port, started) and deleted, in event time; every 50th
    leaves its port behind (an orphan), and h0 has less RAM than the flavor (overcommitted)."""
    clock = T0

    def fact(payload: Event, aggregate: str, producer: str) -> Envelope:
        nonlocal clock
        clock += timedelta(seconds=1)
        return new_event(
            payload, aggregate_id=aggregate, tenant_id="t1", producer=producer, occurred_at=clock
        )

    for h, ram_mb in (("h0", 1024), ("h1", 2**30), ("h2", 2**30)):
        registered = compute.HostRegistered(
            rack="r", zone="z", vcpus=4096, ram_mb=ram_mb, disk_gb=2**30
        )
        yield fact(registered, h, f"compute@{h}")
    unlimited = TenantQuotaSet(limits={"instances": -1, "vcpus": -1, "ram_mb": -1, "ports": -1})
    yield fact(unlimited, "t1", "gateway")
    for i in range(n):
        iid, host = f"i-{i}", f"h{i % 3}"
        yield fact(
            api.InstanceRequested(name=iid, flavor=SMALL, image="img", network="n"), iid, "gateway"
        )
        placed = scheduler.InstanceScheduled(
            host=host,
            rack="r",
            zone="z",
            attempt=1,
            name=iid,
            flavor=SMALL,
            image="img",
            network="n",
        )
        yield fact(placed, iid, "scheduler")
        yield fact(storage.VolumeCreated(name="boot", size_gb=20, instance_id=iid), iid, "storage")
        mac = f"fa:16:3e:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"
        port = network.PortAllocated(
            network_id="n",
            mac=mac,
            ips=(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",),
            security_groups=(),
            instance_id=iid,
        )
        yield fact(port, f"p-{iid}", "network")
        yield fact(compute.InstanceStarted(host=host), iid, f"compute@{host}")
        yield fact(api.InstanceDeletionRequested(), iid, "gateway")
        yield fact(compute.InstanceDeleted(host=host), iid, f"compute@{host}")
        yield fact(scheduler.ClaimReleased(host=host, reason="deleted"), iid, "scheduler")
        yield fact(storage.VolumeDeleted(), iid, "storage")
        if i % 50:
            yield fact(network.PortDeleted(), f"p-{iid}", "network")


async def write_cycles(bootstrap: str, n: int) -> KafkaSettings:
    settings = KafkaSettings(
        bootstrap_servers=bootstrap, namespace=f"stream-{uuid.uuid4().hex[:8]}"
    )
    await ensure_topics(settings, [TopicSpec(topic_of(s, settings.namespace), 3) for s in SERVICES])
    writers: dict[str, EventWriter] = {}
    pending: dict[str, list[Envelope]] = {}

    async def flush() -> None:
        for producer, envelopes in pending.items():
            if producer not in writers:
                writers[producer] = EventWriter(
                    settings, transactional_id=f"{settings.namespace}-{producer}"
                )
                await writers[producer].start()
            topic = topic_of(producer.split("@")[0], settings.namespace)
            async with writers[producer].transaction() as txn:
                for envelope in envelopes:
                    await txn.append(topic, envelope)
        pending.clear()

    try:
        for count, envelope in enumerate(cycles(n), start=1):
            pending.setdefault(envelope.producer, []).append(envelope)
            if count % CHUNK == 0:
                await flush()
        await flush()
    finally:
        for writer in writers.values():
            await writer.stop()
    return settings


async def sorted_whole_log(settings: KafkaSettings) -> list[str]:
    """What `check` found before it streamed: every event decoded into memory, then sorted."""
    envelopes = []
    async for batch in read_topics(settings, await event_topics(settings)):
        envelopes += [decode(r.value, REGISTRY) for r in batch if r.value is not None]
    model = invariants.fold_all(envelopes, SchedulerConfig())
    found = invariants.check(model, NOW, DEFAULT_STUCK_AFTER)
    return [str(v) for v in found + quota_violations(quotas.fold_all(envelopes))]


async def traced_check(settings: KafkaSettings) -> tuple[list[str], int, EventTimeMerge]:
    """Violations, the peak memory traced while checking, and the merge's statistics."""
    merge = EventTimeMerge()
    tracemalloc.start()
    try:
        found = await check(settings, NOW, scheduler=SchedulerConfig(), merge=merge)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return [str(v) for v in found], peak, merge


async def test_check_holds_a_bounded_window_of_the_log_and_finds_what_a_sort_finds(
    kafka_bootstrap: str,
) -> None:
    small = await write_cycles(kafka_bootstrap, 300)  # 2,998 events
    large = await write_cycles(kafka_bootstrap, 1200)  # 11,980 events
    found_small, peak_small, merge_small = await traced_check(small)
    found_large, peak_large, merge_large = await traced_check(large)
    print(
        f"check: merge peak {merge_small.peak} / {merge_large.peak} events, traced peak "
        f"{peak_small / 2**20:.1f} / {peak_large / 2**20:.1f} MiB"
    )

    assert found_small == await sorted_whole_log(small)
    assert found_large == await sorted_whole_log(large)
    kinds = {line.split()[0] for line in found_large}
    assert kinds == {"overcommitted", "orphaned"}, found_large
    assert merge_small.late == merge_large.late == 0
    # Four times the log, not four times the memory: the merge holds a window of event time
    # (a round of writes, CHUNK events, plus one small fetch per partition), and the models
    # hold what is live, a record per instance and the violations.
    assert merge_large.peak <= 2 * CHUNK + 1_000, merge_large.peak
    assert merge_large.peak <= merge_small.peak * 1.5, (merge_small.peak, merge_large.peak)
    assert peak_large < 12 * 2**20, peak_large
    assert peak_large < peak_small * 2, (peak_small, peak_large)


async def test_verify_holds_only_what_is_ahead_of_each_chain_head(kafka_bootstrap: str) -> None:
    small = await write_cycles(kafka_bootstrap, 300)
    large = await write_cycles(kafka_bootstrap, 1200)
    held = []
    for settings in (small, large):
        checker = ChainChecker()
        report = await verify(settings, checker)
        assert report.ok, report
        held.append(checker.peak_buffered)
    print(f"verify: at most {held} records ahead of the chain heads")
    # Each chain keeps its head and the hashes of its last 1,000 records; what waits for a
    # successor is about a fetch of a partition, whatever the log's length.
    assert held[1] <= held[0] * 1.5 + 100, held
