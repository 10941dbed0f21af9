"""Boot throughput and POST→RUNNING latency through the whole stack, three agents on libvirt's
test driver, every service its own process.

Usage: python bench/boot_bench.py [--bootstrap 127.0.0.1:9092] [--boots 600] [--concurrency 50]

`--concurrency` requests are in flight at once (each a POST /v1/instances); an instance's
latency runs from just before its POST to the event time of its InstanceStarted (the agent's
clock, on this same machine). Baseline in the same run: the latency of the POST alone (the
gateway validating, appending and answering 202), i.e. the part of a boot the API accounts for.
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(stack: Stack, boots: int, concurrency: int) -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency * 2)
    ) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        _, token = await admin.create_tenant("bench")
        tenant = admin.as_token(token)
        await tenant.create_instance("warm-up")
        gate = asyncio.Semaphore(concurrency)
        posted: dict[str, float] = {}
        post_seconds: list[float] = []

        async def boot(i: int) -> None:
            async with gate:
                started = time.time()
                created = await tenant.create_instance(f"bench-{i}")
                post_seconds.append(time.time() - started)
                posted[created["id"]] = started

        began = time.time()
        await asyncio.gather(*(boot(i) for i in range(boots)))
        await tenant.wait_status(list(posted), {"RUNNING"}, seconds=600)
        running_at: dict[str, float] = {}
        for iid in posted:
            history = await tenant.call("GET", f"/v1/instances/{iid}/events")
            started_event = next(e for e in history if e["type"] == "InstanceStarted")
            running_at[iid] = datetime.fromisoformat(started_event["occurred_at"]).timestamp()
    latencies = [running_at[i] - posted[i] for i in posted]
    elapsed = max(running_at.values()) - began
    print(f"{boots} boots at concurrency {concurrency}, 3 agents (libvirt test driver)")
    print(
        f"  throughput: {boots / elapsed:8.1f} boots/s  ({elapsed:.1f} s from first POST to "
        "last InstanceStarted)"
    )
    print(
        f"  POST→RUNNING latency: p50 {percentile(latencies, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(latencies, 0.99) * 1000:7.1f} ms"
    )
    print(
        f"  baseline, POST→202 alone: p50 {percentile(post_seconds, 0.5) * 1000:7.1f} ms   "
        f"p99 {percentile(post_seconds, 0.99) * 1000:7.1f} ms   "
        f"mean {statistics.mean(post_seconds) * 1000:.1f} ms"
    )


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
