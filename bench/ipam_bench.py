"""IPAM allocations per second on a /16: the allocator, the controller's pure core, and the
controller as a service on Kafka, next to baselines measured in the same run.

Usage: python bench/ipam_bench.py [--bootstrap 127.0.0.1:9092] [--service-ports 20000]

Baselines: Python's `ipaddress` walking the /16 (`hosts()`, what a list-based allocator pays
just to enumerate), and a naive first-fit allocator that scans from the network start for
every port (what "lowest free address" costs without a high-water mark). The service figure
runs from the first PortRequested written to `<ns>.api` to the last PortAllocated read back
from `<ns>.network`: the controller's decisions, transactions and the broker round trips.
Without --bootstrap the service part is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.kafka import produce_events

from virga_eventlog import KafkaSettings, LogReader, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, decode, new_event
from virga_events.catalog.network import NetworkCreated, NetworkRequested, PortRequested
from virga_ipam import parse_subnet
from virga_network.config import NetworkConfig
from virga_network.core.decide import decide
from virga_network.core.fold import evolve
from virga_network.core.ipam import next_free
from virga_network.core.model import NetworkState
from virga_network.service import definition
from virga_runtime import Emit, RunnerConfig, ServiceRunner

CIDR = "10.64.0.0/16"


def timed(label: str, count: int, run: Callable[[], int]) -> float:
    started = time.perf_counter()
    done = run()
    seconds = time.perf_counter() - started
    assert done == count, (label, done, count)
    rate = count / seconds
    print(f"{label:<58} {count:>7} in {seconds:7.3f} s = {rate:>11,.0f} /s")
    return rate


def enumerate_hosts() -> int:
    return sum(1 for _ in ipaddress.ip_network(CIDR).hosts())


def allocator(count: int) -> int:
    pools = parse_subnet(CIDR).default_pools()
    used: set[int] = set()
    high_water = -1
    for _ in range(count):
        offset = next_free(pools, used, high_water)
        assert offset is not None
        used.add(offset)
        high_water = max(high_water, offset)
    return len(used)


def naive_first_fit(count: int) -> int:
    hosts = list(ipaddress.IPv4Network(CIDR).hosts())[1:]  # the gateway is reserved
    used: set[ipaddress.IPv4Address] = set()
    for _ in range(count):
        used.add(next(ip for ip in hosts if ip not in used))
    return len(used)


def after_wrap(frees: int, hinted: bool) -> Callable[[], int]:
    """A full /16 with `frees` random ports deleted: each allocation searches below the mark,
    from the controller's in-use-below bound if `hinted`, else from the pool start."""
    (low, high) = parse_subnet(CIDR).default_pools()[0]
    used = set(range(low, high + 1))
    freed = random.Random(5).sample(sorted(used), frees)
    used.difference_update(freed)
    pools = [(low, high)]

    def run() -> int:
        taken, below = 0, min(freed) if hinted else low
        while (offset := next_free(pools, used, high, below)) is not None:
            used.add(offset)
            taken += 1
            while hinted and below in used:
                below += 1
        return taken

    return run


def pure_core(count: int) -> int:
    config = NetworkConfig()
    state = NetworkState()

    def apply(envelope: Envelope) -> list[Emit]:
        nonlocal state
        state = evolve(state, envelope)
        out = [i for i in decide(config, state, envelope) if isinstance(i, Emit)]
        for emit in out:
            state = evolve(
                state,
                new_event(
                    emit.payload,
                    aggregate_id=emit.aggregate_id,
                    tenant_id=emit.tenant_id,
                    producer="network",
                ),
            )
        return out

    apply(request(NetworkRequested(name="bench", cidr=CIDR), "net"))
    allocated = 0
    for index in range(count):
        allocated += len(apply(request(PortRequested(network_id="net"), f"port-{index}")))
    return allocated


def request(event: NetworkRequested | PortRequested, aggregate: str) -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t-1", producer="gateway")


async def through_the_service(bootstrap: str, count: int) -> None:
    namespace = f"bench{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(6, namespace))
    api, network = event_topic("gateway", namespace), event_topic("network", namespace)
    runner = ServiceRunner(definition(NetworkConfig(namespace=namespace)), settings, RunnerConfig())
    await runner.start()
    serving = asyncio.create_task(runner.serve())
    try:
        async with LogReader(settings, [network], client_id="ipam-bench") as reader:
            reader.seek(await reader.end_offsets())
            await produce_events(
                bootstrap, api, [request(NetworkRequested(name="b", cidr=CIDR), "n")]
            )
            await read_until(reader, b"NetworkCreated", 1)
            requests = [request(PortRequested(network_id="n"), f"p-{i}") for i in range(count)]
            started = time.perf_counter()
            await produce_events(bootstrap, api, requests)
            await read_until(reader, b"PortAllocated", count)
            seconds = time.perf_counter() - started
        label = "controller service on Kafka (write requests -> allocations)"
        print(f"{label:<58} {count:>7} in {seconds:7.3f} s = {count / seconds:>11,.0f} /s")
    finally:
        runner.request_stop()
        await serving
        await runner.close(snapshot=False)


async def read_until(reader: LogReader, kind: bytes, count: int) -> None:
    seen = 0
    while seen < count:
        for record in await reader.read(timeout_ms=100):
            if record.value is not None and kind in record.value:
                if kind == b"NetworkCreated":
                    assert isinstance(decode(record.value).payload, NetworkCreated)
                seen += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", help="Kafka bootstrap servers; none: skip the service")
    parser.add_argument("--service-ports", type=int, default=20_000)
    args = parser.parse_args()
    whole = parse_subnet(CIDR).default_pools()[0]
    ports = whole[1] - whole[0] + 1
    print(f"IPAM on {CIDR}: {ports} allocatable addresses")
    timed("baseline: ipaddress walks the /16 (hosts())", ports + 1, enumerate_hosts)
    timed(
        "baseline: naive first-fit, scan from the start (5,000 ports)",
        5000,
        lambda: naive_first_fit(5000),
    )
    timed(
        "allocator: next_free above the high-water mark (whole /16)",
        ports,
        lambda: allocator(ports),
    )
    timed(
        "baseline: wrapped /16, 1,000 random frees, scan from start", 1000, after_wrap(1000, False)
    )
    timed("allocator: wrapped /16, 1,000 random frees, in-use-below", 1000, after_wrap(1000, True))
    timed(
        "pure core: evolve + decide + fold, PortAllocated (whole /16)",
        ports,
        lambda: pure_core(ports),
    )
    if args.bootstrap:
        asyncio.run(through_the_service(args.bootstrap, args.service_ports))


if __name__ == "__main__":
    main()
