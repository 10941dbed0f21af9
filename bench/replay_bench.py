"""Replay of a mixed log into every service's state (`virga audit replay --service all`), next
to a raw aiokafka read of the same topics in the same run.

Usage: python bench/replay_bench.py [--bootstrap 127.0.0.1:9092] [--events 1000000] [--hosts 4]
       [--reuse NAMESPACE] [--services gateway,scheduler]

Writes Virga's own events to a fresh namespace, as the services would: instances requested,
placed, started, stopped and deleted with their boot volume and port, volumes extended, usage
samples (half the log), hosts, networks, prices. Then (a) raw: every event topic read with
aiokafka, no decoding; (b) replay: `virga_audit.replay_all`, each service's own definition
folding its inputs then its own topic, as a rebuild does (compute once per host), in two
passes over the log; (c) each of `--services` alone, its own fold of every event it reads, as
its cold rebuild folds them. Prints the events per second of each, beside the raw read.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer

from virga_audit import replay_all
from virga_audit.replay import replay_state, service_definition
from virga_audit.rerate import END_OF_TIME
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor, api, compute, network, scheduler, storage
from virga_events.catalog.billing import PricesSet

SERVICES_WITH_TOPICS = ("gateway", "scheduler", "compute", "storage", "network", "billing")
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)
CHUNK = 20_000


def mixed_log(n: int, hosts: int, seed: int = 7) -> Iterator[tuple[str, Envelope]]:
    """(producer, event) pairs, `n` of them, in event-time order, one second apart."""
    rng = random.Random(seed)
    tenants = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(200)]
    now = datetime(2026, 9, 1, tzinfo=UTC)
    emitted = 0
    running: dict[str, tuple[str, str, int]] = {}  # instance -> (tenant, host, tx counter)
    stopped: dict[str, tuple[str, str, int]] = {}
    volumes: dict[str, tuple[str, int]] = {}
    ip = 0

    def fact(
        producer: str, payload: Event, aggregate: str, tenant: str | None
    ) -> tuple[str, Envelope]:
        nonlocal now, emitted
        now += timedelta(seconds=1)
        emitted += 1
        return producer, new_event(
            payload, aggregate_id=aggregate, tenant_id=tenant, producer=producer, occurred_at=now
        )

    names = [f"host-{i:02d}" for i in range(hosts)]
    for host in names:
        registered = compute.HostRegistered(
            rack="r1", zone="z1", vcpus=64, ram_mb=262144, disk_gb=4000
        )
        yield fact(f"compute@{host}", registered, host, None)
    pools = (network.AllocationPool(start="10.0.0.10", end="10.255.255.250"),)
    created = network.NetworkCreated(
        name="net", cidr="10.0.0.0/8", vni=1000, gateway_ip="10.0.0.1", allocation_pools=pools
    )
    yield fact("network", created, "net-1", tenants[0])
    prices = PricesSet(
        currency="EUR",
        effective_from=now,
        flavor_hour={"m1.small": "0.10"},
        volume_gb_month="0.04",
        egress_gb="0.05",
        public_ip_hour="0.005",
    )
    yield fact("gateway", prices, "prices", None)
    while emitted < n:
        roll = rng.random()
        if roll < 0.08 or not running:
            iid, tenant, host = str(uuid.uuid4()), rng.choice(tenants), rng.choice(names)
            ip += 1
            mac = f"fa:16:3e:{ip >> 16 & 255:02x}:{ip >> 8 & 255:02x}:{ip & 255:02x}"
            address = f"10.{ip >> 16 & 255}.{ip >> 8 & 255}.{ip & 255}"
            requested = api.InstanceRequested(name="vm", flavor=SMALL, image="img", network="net-1")
            placed = scheduler.InstanceScheduled(
                host=host,
                rack="r1",
                zone="z1",
                attempt=1,
                name="vm",
                flavor=SMALL,
                image="img",
                network="net-1",
            )
            port = network.PortAllocated(
                network_id="net-1", mac=mac, ips=(address,), security_groups=(), instance_id=iid
            )
            yield fact("gateway", requested, iid, tenant)
            yield fact("scheduler", placed, iid, tenant)
            yield fact(
                "storage",
                storage.VolumeCreated(name="boot", size_gb=20, instance_id=iid),
                f"v-{iid}",
                tenant,
            )
            yield fact("network", port, f"p-{iid}", tenant)
            yield fact(f"compute@{host}", compute.InstanceStarted(host=host), iid, tenant)
            running[iid] = (tenant, host, 0)
            volumes[f"v-{iid}"] = (tenant, 20)
        elif roll < 0.60:
            iid = rng.choice(list(running)) if len(running) < 64 else _pick(rng, running)
            tenant, host, counter = running[iid]
            counter += rng.randrange(1_000_000, 50_000_000)
            running[iid] = (tenant, host, counter)
            sample = compute.UsageSampled(
                host=host,
                period_seconds=60,
                cpu_time_ns=0,
                memory_kb=0,
                disk_read_bytes=0,
                disk_write_bytes=0,
                net_rx_bytes=0,
                net_tx_bytes=counter,
            )
            yield fact(f"compute@{host}", sample, iid, tenant)
        elif roll < 0.75:
            if stopped and rng.random() < 0.5:
                iid = _pick(rng, stopped)
                tenant, host, _ = stopped.pop(iid)
                running[iid] = (tenant, host, 0)
                yield fact(f"compute@{host}", compute.InstanceStarted(host=host), iid, tenant)
            else:
                iid = _pick(rng, running)
                stopped[iid] = running.pop(iid)
                tenant, host, _ = stopped[iid]
                yield fact(f"compute@{host}", compute.InstanceStopped(host=host), iid, tenant)
        elif roll < 0.82 and volumes:
            vid = _pick(rng, volumes)
            tenant, size = volumes[vid]
            volumes[vid] = (tenant, size + 10)
            yield fact("storage", storage.VolumeExtended(size_gb=size + 10), vid, tenant)
        elif running:
            iid = _pick(rng, running)
            tenant, host, _ = running.pop(iid)
            volumes.pop(f"v-{iid}", None)
            yield fact("gateway", api.InstanceDeletionRequested(), iid, tenant)
            yield fact(f"compute@{host}", compute.InstanceDeleted(host=host), iid, tenant)
            yield fact(
                "scheduler",
                scheduler.ClaimReleased(host=host, reason="instance deleted"),
                iid,
                tenant,
            )
            yield fact("storage", storage.VolumeDeleted(), f"v-{iid}", tenant)
            yield fact("network", network.PortDeleted(), f"p-{iid}", tenant)


def _pick(rng: random.Random, table: dict[str, Any]) -> str:
    # Dicts keep insertion order; a random index into a key view is O(n) but n stays small.
    keys = list(table) if len(table) < 2048 else list(table)[-2048:]
    return rng.choice(keys)


async def write_log(settings: KafkaSettings, n: int, hosts: int) -> int:
    await ensure_topics(settings, virga_topics(partitions=6, namespace=settings.namespace))
    writers: dict[str, EventWriter] = {}
    written = 0
    pending: dict[str, list[Envelope]] = {}

    async def flush() -> None:
        nonlocal written
        for producer, envelopes in pending.items():
            writer = writers.get(producer)
            if writer is None:
                writer = writers[producer] = EventWriter(
                    settings, transactional_id=f"{settings.namespace}-{producer}"
                )
                await writer.start()
            topic = event_topic(producer.split("@")[0], settings.namespace)
            async with writer.transaction() as txn:
                for envelope in envelopes:
                    await txn.append(topic, envelope)
            written += len(envelopes)
        pending.clear()

    try:
        for count, (producer, envelope) in enumerate(mixed_log(n, hosts), start=1):
            pending.setdefault(producer, []).append(envelope)
            if count % CHUNK == 0:
                await flush()
        await flush()
    finally:
        for writer in writers.values():
            await writer.stop()
    return written


async def raw_read(settings: KafkaSettings, n: int, per_topic: dict[str, int]) -> float:
    topics = [event_topic(s, settings.namespace) for s in SERVICES_WITH_TOPICS]
    consumer = AIOKafkaConsumer(
        *topics,
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
            for tp, records in batches.items():
                count += len(records)
                per_topic[tp.topic] = per_topic.get(tp.topic, 0) + len(records)
    finally:
        elapsed = time.perf_counter() - started
        await consumer.stop()
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--reuse", metavar="NAMESPACE", help="Replay a log an earlier run wrote.")
    parser.add_argument(
        "--services",
        default="gateway,scheduler",
        help="Services whose own fold is then timed alone (comma-separated; '' for none).",
    )
    args = parser.parse_args()
    # Folds that refuse an event log a warning each; the bench counts time, not warnings.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    namespace = args.reuse or f"replay{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(bootstrap_servers=args.bootstrap, namespace=namespace)
    if args.reuse:
        n = args.events
    else:
        started = time.perf_counter()
        n = await write_log(settings, args.events, args.hosts)
        seconds = time.perf_counter() - started
        print(f"wrote {n:,} events to {namespace} in {seconds:.1f} s ({args.hosts} hosts)")

    per_topic: dict[str, int] = {}
    raw = await raw_read(settings, n, per_topic)
    print(f"raw aiokafka read of every event topic (no decode): {raw:>10,.0f} events/s")
    started, cpu = time.perf_counter(), time.process_time()
    states = await replay_all(settings, END_OF_TIME)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"replay of every service's state (decode+fold): {n / seconds:>10,.0f} events/s "
        f"of the log ({seconds:.1f} s), ratio to raw {n / seconds / raw:.2f}"
    )
    # On a shared machine the wall time swings with the neighbours' load; CPU time less so.
    print(f"replay CPU time: {cpu:.1f} s ({n / cpu:,.0f} events/s of CPU)")
    gateway, billing = states["gateway"], states["billing"]
    print(
        f"state: {len(gateway['instances']):,} instances in the gateway, "
        f"{len(billing['instances']):,} instances and {len(billing['volumes']):,} volumes "
        f"in billing, {len(states['compute'])} compute agents"
    )
    for service in args.services.split(",") if args.services else ():
        await one_service(settings, service, per_topic, raw)


async def one_service(
    settings: KafkaSettings, service: str, per_topic: dict[str, int], raw: float
) -> None:
    """One service's own fold of everything it reads (inputs deduplicated, then its own
    topic), as its cold rebuild folds it (`replay_state`; the cyclic GC off, as there)."""
    definition = service_definition(service, settings.namespace)
    topics = {*definition.input_topics, definition.output_topic}
    events = sum(per_topic.get(topic, 0) for topic in topics)
    gc.disable()
    try:
        started, cpu = time.perf_counter(), time.process_time()
        await replay_state(settings, definition, END_OF_TIME)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        gc.enable()
    print(
        f"{service}'s own rebuild fold of the {events:,} events it reads: "
        f"{events / seconds:>10,.0f} events/s ({seconds:.1f} s), ratio to raw "
        f"{events / seconds / raw:.2f}; CPU {cpu:.1f} s ({events / cpu:,.0f} events/s of CPU)"
    )


if __name__ == "__main__":
    asyncio.run(main())
