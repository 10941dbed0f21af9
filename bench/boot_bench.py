"""Boot throughput and POST→RUNNING latency through the whole stack, three agents on libvirt's
test driver, every service its own process.

Usage: python bench/boot_bench.py [--bootstrap 127.0.0.1:9092] [--boots 600] [--concurrency 50]

Closed loop, as Rally measures Nova: `--concurrency` workers each boot one instance, wait until
it runs, then boot the next. A boot's latency runs from just before its POST to the event time
of its InstanceStarted (the agent's clock, on this same machine); workers learn of it by
tailing the compute topic, so no API polling loads the gateway. Baseline in the same run: the
POST alone (the gateway validating, appending in a transaction and answering 202).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.api import Api
from tests.support.stack import HostSpec, Stack

from virga_eventlog import KafkaSettings, LogReader, event_topic
from virga_events import decode
from virga_events.catalog.compute import InstanceStarted


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def tail_started(stack: Stack, started: dict[str, asyncio.Future[float]]) -> None:
    """Resolve each instance's future with the event time of its InstanceStarted."""
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap, namespace=stack.namespace)
    compute = event_topic("compute", stack.namespace)  # and every host's (the stack's are up)
    async with LogReader(settings, [compute], client_id="boot-bench", families=[compute]) as reader:
        reader.seek(await reader.end_offsets())
        while True:
            for record in await reader.read(timeout_ms=50):
                if record.value is None or b"InstanceStarted" not in record.value:
                    continue
                envelope = decode(record.value)
                if isinstance(envelope.payload, InstanceStarted):
                    future = started.setdefault(
                        envelope.aggregate_id, asyncio.get_running_loop().create_future()
                    )
                    if not future.done():
                        future.set_result(envelope.occurred_at.timestamp())


async def run(stack: Stack, boots: int, concurrency: int) -> None:
    started: dict[str, asyncio.Future[float]] = {}
    tail = asyncio.create_task(tail_started(stack, started))
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency * 2)
    ) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        _, token = await admin.create_tenant("bench")
        tenant = admin.as_token(token)
        await asyncio.sleep(1.0)  # the tail is positioned
        latencies: list[float] = []
        post_seconds: list[float] = []
        remaining = iter(range(boots))

        async def worker() -> None:
            loop = asyncio.get_running_loop()
            for i in remaining:
                begun = time.time()
                created = await tenant.create_instance(f"bench-{i}")
                post_seconds.append(time.time() - begun)
                future = started.setdefault(created["id"], loop.create_future())
                running_at = await asyncio.wait_for(future, 120)
                latencies.append(running_at - begun)

        began = time.time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.time() - began
        hops = await hop_times(tenant, list(started)[-50:])
    tail.cancel()
    print(f"{boots} boots, {concurrency} concurrent, 3 agents (libvirt test driver)")
    print(f"  throughput: {boots / elapsed:8.1f} boots/s  ({elapsed:.1f} s)")
    print(
        f"  POST→RUNNING latency: p50 {percentile(latencies, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms"
    )
    print(
        f"  baseline, POST→202 alone: p50 {percentile(post_seconds, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(post_seconds, 0.99) * 1000:7.1f} ms   "
        f"mean {statistics.mean(post_seconds) * 1000:.1f} ms"
    )
    for hop, values in hops.items():
        print(f"  hop {hop:<38} p50 {percentile(values, 0.5) * 1000:7.1f} ms")


async def hop_times(tenant: Api, instance_ids: list[str]) -> dict[str, list[float]]:
    """Event-time gaps between the services, from the last instances' histories."""
    hops: dict[str, list[float]] = {
        "InstanceRequested→InstanceScheduled": [],
        "InstanceScheduled→InstanceStarted": [],
    }
    for iid in instance_ids:
        history = await tenant.call("GET", f"/v1/instances/{iid}/events")
        at = {e["type"]: datetime.fromisoformat(e["occurred_at"]).timestamp() for e in history}
        if {"InstanceRequested", "InstanceScheduled", "InstanceStarted"} <= set(at):
            hops["InstanceRequested→InstanceScheduled"].append(
                at["InstanceScheduled"] - at["InstanceRequested"]
            )
            hops["InstanceScheduled→InstanceStarted"].append(
                at["InstanceStarted"] - at["InstanceScheduled"]
            )
    return hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--boots", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    hosts = (HostSpec("bench-a", "r1"), HostSpec("bench-b", "r2"), HostSpec("bench-c", "r3"))
    with tempfile.TemporaryDirectory(prefix="virga-boot-bench-") as tmp:
        stack = Stack(args.bootstrap, Path(tmp), hosts)
        stack.start()
        try:
            asyncio.run(run(stack, args.boots, args.concurrency))
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
