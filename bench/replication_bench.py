"""What replication costs a write, and how long a write waits when a broker dies: keyed
``POST /v1/instances`` through the gateway on a 3-broker KRaft cluster (3 copies, 2 in sync,
``acks=all``) next to the same on the single dev broker (1 copy), in the same run.

Usage: python bench/replication_bench.py [--single-port 19390] [--cluster-port 19380]
       [--posts 1000] [--concurrency 20] [--runs 3] [--kills 3]

Starts (fresh) a single broker and a 3-broker cluster (`virga_devstack.kafka_cluster`, its
controllers 100 ports above) and a gateway on each, alone: a POST is the gateway validating,
appending `InstanceRequested` with its idempotency record in one transaction and answering
202, which is the whole write path of a request. Closed loop: `--concurrency` clients, each
POSTing with a fresh Idempotency-Key once the previous answer came. Each of `--runs` runs
measures both brokers; the summary gives the medians and the cluster's ratio to the single
broker.

Then, `--kills` times: one client POSTs in a loop (each POST bounded to 2 s, retried with the
same key) while the broker leading partition 0 of ``<ns>.api`` is SIGKILLed; the time from the
kill to the first 2xx of a POST begun after it is the failover as a client sees it. The broker
is started again and the cluster waits for it before the next kill.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.api import Api, ApiError
from tests.support.stack import HostSpec, Stack

from virga_devstack.kafka import KafkaBroker
from virga_devstack.kafka_cluster import KafkaCluster


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextmanager
def gateway(bootstrap: str, run_dir: Path) -> Iterator[Stack]:
    """A stack of which only the gateway runs (a POST needs nothing else)."""
    stack = Stack(bootstrap, run_dir, (HostSpec("bench-a", "r1"),))
    stack.build()
    process = stack.processes["gateway"]
    process.start()
    try:
        process.wait_healthy(timeout=120)
        yield stack
    finally:
        process.stop()


async def tenant_api(session: aiohttp.ClientSession, stack: Stack) -> Api:
    admin = Api(session, stack.gateway_url, stack.admin_token)
    _, token = await admin.create_tenant(f"bench-{uuid.uuid4().hex[:6]}")
    return admin.as_token(token)


async def keyed_post(api: Api, key: str) -> None:
    body = {"name": "bench", "flavor": "m1.tiny"}
    await api.call("POST", "/v1/instances", body, expect=(202,), headers={"Idempotency-Key": key})


async def throughput(stack: Stack, posts: int, concurrency: int) -> tuple[float, float, float]:
    """(POSTs per second, p50 s, p99 s) of `posts` keyed POSTs, `concurrency` at a time."""
    connector = aiohttp.TCPConnector(limit=concurrency * 2)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = await tenant_api(session, stack)
        for _ in range(concurrency):  # warm: connections, the producer's first transaction
            await keyed_post(api, str(uuid.uuid4()))
        latencies: list[float] = []
        remaining = iter(range(posts))

        async def client() -> None:
            for _ in remaining:
                began = time.perf_counter()
                await keyed_post(api, str(uuid.uuid4()))
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return posts / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99)


async def failover(stack: Stack, cluster: KafkaCluster) -> tuple[int, float]:
    """(node killed, seconds from its SIGKILL to the first 2xx of a POST begun after it)."""
    timeout = aiohttp.ClientTimeout(total=2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = await tenant_api(session, stack)
        await keyed_post(api, str(uuid.uuid4()))
        leader = await cluster.leader(f"{stack.namespace}.api")
        await asyncio.to_thread(leader.kill)
        killed = time.perf_counter()
        key = str(uuid.uuid4())
        while True:
            try:
                await keyed_post(api, key)
                break
            except (ApiError, aiohttp.ClientError, TimeoutError):
                await asyncio.sleep(0.05)
        waited = time.perf_counter() - killed
    await asyncio.to_thread(leader.start)
    await asyncio.to_thread(cluster.wait_brokers, len(cluster.brokers))
    return leader.node_id, waited


async def run(
    args: argparse.Namespace, single: Stack, replicated: Stack, cluster: KafkaCluster
) -> None:
    rows: dict[str, list[tuple[float, float, float]]] = {"single": [], "cluster": []}
    for n in range(args.runs):
        for name, stack in (("single", single), ("cluster", replicated)):
            measured = await throughput(stack, args.posts, args.concurrency)
            rows[name].append(measured)
            rate, p50, p99 = measured
            print(
                f"run {n + 1} {name:<8} {rate:8.1f} POST/s  p50 {p50 * 1000:6.1f} ms  "
                f"p99 {p99 * 1000:6.1f} ms",
                flush=True,
            )
    kills = [await failover(replicated, cluster) for _ in range(args.kills)]
    for node, waited in kills:
        print(f"kill of node {node} (leader of <ns>.api): first 2xx POST after {waited:.2f} s")

    def medians(name: str) -> tuple[float, float, float]:
        runs = rows[name]
        return tuple(statistics.median(r[i] for r in runs) for i in range(3))  # type: ignore[return-value]

    base, repl = medians("single"), medians("cluster")
    print(
        f"\n{args.posts} keyed POST /v1/instances, {args.concurrency} concurrent; "
        f"medians of {args.runs} runs"
    )
    print(f"{'broker':<40} {'POST/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    print(
        f"{'single broker, 1 copy (baseline)':<40} {base[0]:>9.1f} {base[1] * 1000:>8.1f} "
        f"{base[2] * 1000:>8.1f}"
    )
    print(
        f"{'3 brokers, 3 copies, min.insync 2':<40} {repl[0]:>9.1f} {repl[1] * 1000:>8.1f} "
        f"{repl[2] * 1000:>8.1f}"
    )
    print(
        f"{'3 brokers / single':<40} {repl[0] / base[0]:>9.2f} {repl[1] / base[1]:>8.2f} "
        f"{repl[2] / base[2]:>8.2f}"
    )
    if kills:
        waits = [w for _, w in kills]
        print(
            f"leader of <ns>.api killed: first write after median {statistics.median(waits):.2f} s"
            f" (max {max(waits):.2f} s, {len(waits)} kills)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--single-port", type=int, default=19390)
    parser.add_argument("--cluster-port", type=int, default=19380)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--kills", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    broker = KafkaBroker(args.single_port)
    cluster = KafkaCluster(3, args.cluster_port)
    broker.start(fresh=True)
    try:
        cluster.start(fresh=True)
        with (
            tempfile.TemporaryDirectory(prefix="virga-replication-bench-") as tmp,
            gateway(broker.bootstrap_servers, Path(tmp) / "single") as single,
            gateway(cluster.bootstrap_servers, Path(tmp) / "cluster") as replicated,
        ):
            asyncio.run(run(args, single, replicated, cluster))
    finally:
        cluster.stop()
        broker.stop()


if __name__ == "__main__":
    main()
