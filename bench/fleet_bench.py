"""A cloud of 100,000 instances in the log: each service's resident memory, and gateway GETs/s.

Usage: python bench/fleet_bench.py [--bootstrap 127.0.0.1:9092] [--instances 100000]
       [--hosts 500] [--seconds 10]

Writes a fleet to a fresh topic namespace the way the services would have: tenants and
`InstanceRequested` on `<ns>.api`, `InstanceScheduled` on `<ns>.scheduler`, `HostRegistered`
and `InstanceStarted` on `<ns>.compute`. Then, for each service (gateway, scheduler, one
compute agent, storage, billing, and the network controller when it is installed), it starts
the process on that namespace, waits until `/healthz` says it caught up, and reads its
VmRSS; the baseline is the same service on an empty namespace, in the same run.

Then the gateway alone is pinned to one core (`sched_setaffinity`) and `wrk` (Debian's
package) loads it from the other core for `--seconds`: GET one instance, GET a page of 50
instances, and the baseline, `/healthz` on the same server (no token, no projection).

Last, churn: `--instances` instances created and deleted (one a second, each living ten
minutes: request, placement, start, deletion request, deletion, claim released), folded
straight into a gateway projection in a fresh process, which then reads its VmRSS: with the
default retention (deleted instances forgotten an hour after their deletion, event time), and
with nothing ever forgotten (as before retention), against an empty projection; the median of
`--churn-runs` processes each. Once more spread over four months (one instance every ~100 s for
100,000), where each month's usage history leaves an hour into the next month. `--churn-only`
runs just this part (no Kafka, no wrk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.ports import free_port

from virga_devstack.processes import ServiceProcess
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog.api import InstanceRequested, TenantCreated
from virga_events.catalog.common import Flavor
from virga_events.catalog.compute import HostRegistered, InstanceStarted
from virga_events.catalog.scheduler import InstanceScheduled

FLAVOR = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)
AGENT_HOST = "fleet-host-000"


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    env: dict[str, str]


def fleet(namespace: str, instances: int, hosts: int) -> dict[str, list[Envelope]]:
    """Envelopes per topic: a settled cloud where every instance runs."""
    rng = random.Random(7)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    topics: dict[str, list[Envelope]] = {
        event_topic(service, namespace): [] for service in ("gateway", "scheduler", "compute")
    }
    api, scheduler, compute = topics.values()

    def add(target: list[Envelope], payload: Event, aggregate: str, tenant: str | None) -> None:
        producer = {id(api): "gateway", id(scheduler): "scheduler"}.get(id(target), "compute")
        target.append(
            new_event(
                payload, aggregate_id=aggregate, tenant_id=tenant, producer=producer, occurred_at=at
            )
        )

    tenants = [str(uuid.uuid4()) for _ in range(max(1, instances // 1000))]
    for i, tenant in enumerate(tenants):
        add(api, TenantCreated(name=f"tenant-{i}"), tenant, tenant)
    host_names = [f"fleet-host-{i:03d}" for i in range(hosts)]
    for name in host_names:
        add(compute, HostRegistered(rack="r1", zone="az1", vcpus=512, ram_mb=2**21, disk_gb=10**5),
            name, None)  # fmt: skip
    for i in range(instances):
        iid, tenant, host = str(uuid.uuid4()), rng.choice(tenants), rng.choice(host_names)
        add(api, InstanceRequested(name=f"vm-{i}", flavor=FLAVOR), iid, tenant)
        placed = InstanceScheduled(
            host=host, rack="r1", zone="az1", attempt=1, name=f"vm-{i}", flavor=FLAVOR
        )
        add(scheduler, placed, iid, tenant)
        add(compute, InstanceStarted(host=host), iid, tenant)
        at += timedelta(milliseconds=1)
    return topics


async def write_fleet(settings: KafkaSettings, topics: dict[str, list[Envelope]]) -> None:
    await ensure_topics(settings, virga_topics(namespace=settings.namespace))
    for topic, envelopes in topics.items():
        producer = envelopes[0].producer
        async with EventWriter(settings, transactional_id=f"fleet-{topic}-{producer}") as writer:
            for start in range(0, len(envelopes), 20_000):
                async with writer.transaction() as txn:
                    for envelope in envelopes[start : start + 20_000]:
                        await txn.append(topic, envelope)


def services(run_dir: Path, bootstrap: str, namespace: str, admin_token: str) -> list[Service]:
    common = {"VIRGA_KAFKA_BOOTSTRAP": bootstrap, "VIRGA_NAMESPACE": namespace}
    node = run_dir / "node.xml"
    node.write_text(
        "<node><cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>2</sockets>"
        "<cores>64</cores><threads>2</threads><active>256</active><total>256</total></cpu>"
        f"<memory>{2**31}</memory></node>"
    )
    found = [
        Service(
            "gateway",
            "virga_gateway",
            {
                **common,
                "VIRGA_ADMIN_TOKEN": admin_token,
                "VIRGA_TOKEN_SECRET": secrets.token_urlsafe(32),
                "VIRGA_GATEWAY_HOST": "127.0.0.1",
            },
        ),
        Service("scheduler", "virga_scheduler", common),
        Service(
            "compute",
            "virga_compute",
            {
                **common,
                "VIRGA_HOST": AGENT_HOST,
                "VIRGA_LIBVIRT_URI": f"test://{node}",
                "VIRGA_DOMAIN_TYPE": "test",
                "VIRGA_INSTANCES_PATH": str(run_dir / "instances"),
            },
        ),
        Service("storage", "virga_storage", {**common, "VIRGA_CEPH_CONF": "memory://"}),
        Service("billing", "virga_billing", common),
    ]
    if (Path(__file__).resolve().parents[1] / "services" / "virga_network").is_dir():
        found.append(Service("network", "virga_network", common))
    return found


def rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def start(service: Service, run_dir: Path, tag: str) -> tuple[ServiceProcess, int, float]:
    """The service's process, its /healthz port, and its start-to-ready seconds."""
    port = free_port()
    env = {**service.env, "VIRGA_HTTP_PORT": str(port), "VIRGA_GATEWAY_PORT": str(port)}
    process = ServiceProcess(
        f"{service.name}-{tag}",
        service.module,
        env,
        run_dir,
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    began = time.perf_counter()
    process.start()
    process.wait_healthy(timeout=600)
    return process, port, time.perf_counter() - began


def measure_memory(
    run_dir: Path, fleet_services: list[Service], empty_services: list[Service]
) -> None:
    print(f"{'service':<10} {'RSS, fleet':>12} {'RSS, empty log':>15} {'ready in':>9}")
    for full, empty in zip(fleet_services, empty_services, strict=True):
        readings = []
        for service, tag in ((full, "fleet"), (empty, "empty")):
            process, _, ready = start(service, run_dir, tag)
            try:
                time.sleep(1.0)  # past the first tick and snapshot scheduling
                pid = process.pid()
                assert pid is not None
                readings.append((rss_kib(pid), ready))
            finally:
                process.stop()
        (fleet_rss, ready), (empty_rss, _) = readings
        print(f"{full.name:<10} {fleet_rss / 1024:>9.0f} MiB {empty_rss / 1024:>11.0f} MiB "
              f"{ready:>8.1f}s")  # fmt: skip


def wrk(url: str, seconds: int, token: str | None) -> float:
    command = ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", url]
    if token is not None:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    os.sched_setaffinity(0, {1})
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"{url} answered errors:\n{out}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def measure_gets(
    run_dir: Path, gateway: Service, token: str, instance_id: str, seconds: int
) -> None:
    process, port, _ = start(gateway, run_dir, "wrk")
    try:
        pid = process.pid()
        assert pid is not None
        os.sched_setaffinity(pid, {0})
        base = f"http://127.0.0.1:{port}"
        rows = [
            ("GET /v1/instances/{id}", wrk(f"{base}/v1/instances/{instance_id}", seconds, token)),
            ("GET /v1/instances?limit=50", wrk(f"{base}/v1/instances?limit=50", seconds, token)),
            ("baseline: GET /healthz", wrk(f"{base}/healthz", seconds, None)),
        ]
    finally:
        process.stop()
    print(f"\ngateway on one core, wrk -t1 -c32 -d{seconds}s from the other core")
    for label, rps in rows:
        print(f"  {label:<28} {rps:>9.0f} requests/s   ({rps / rows[-1][1]:.2f} of baseline)")


CHURN_RETENTIONS = {
    "retention 1 h": (3600.0, 0),
    "1 h, 4 months": (3600.0, 4),
    "never forgotten": (float(10**9), 0),
}
"""Label -> (retention seconds, months the churn is spread over: 0 for one instance a second,
all in one month). Spread over months, the usage history of each month leaves the projection
an hour into the next one (`virga_gateway.billing.retention`)."""


def churn_child(instances: int, retention_seconds: float, months: int = 0) -> None:
    """Fold `instances` created-and-deleted instances into a projection; print VmRSS (KiB),
    the instances and the instances' usage records it remembers."""
    import gc

    from virga_events.catalog.api import InstanceDeletionRequested
    from virga_events.catalog.compute import HostHeartbeat, InstanceDeleted
    from virga_events.catalog.scheduler import ClaimReleased
    from virga_gateway.state import GatewayState, evolve

    retention = timedelta(seconds=retention_seconds)
    state = GatewayState()
    start, tenant = datetime(2026, 11, 1, tzinfo=UTC), "churn-tenant"

    def fold(payload: Event, aggregate: str, producer: str, at: datetime) -> None:
        envelope = new_event(payload, aggregate_id=aggregate, tenant_id=tenant,
                             producer=producer, occurred_at=at)  # fmt: skip
        evolve(state, envelope, retention)

    placed = InstanceScheduled(host=AGENT_HOST, rack="r1", zone="az1", attempt=1, name="vm",
                               flavor=FLAVOR)  # fmt: skip
    spacing = months * 30 * 86400 / instances if months and instances else 1.0
    for i in range(instances):
        iid, born = str(uuid.uuid4()), start + timedelta(seconds=i * spacing)
        fold(InstanceRequested(name=f"vm-{i}", flavor=FLAVOR), iid, "gateway", born)
        fold(placed, iid, "scheduler", born + timedelta(seconds=1))
        fold(InstanceStarted(host=AGENT_HOST), iid, "compute", born + timedelta(seconds=20))
        end = born + timedelta(minutes=10)
        fold(InstanceDeletionRequested(), iid, "gateway", end)
        fold(InstanceDeleted(host=AGENT_HOST), iid, "compute", end + timedelta(seconds=5))
        fold(ClaimReleased(host=AGENT_HOST, reason="deleted"), iid, "scheduler",
             end + timedelta(seconds=6))  # fmt: skip
    # The log goes on (a heartbeat) past every deletion's retention.
    last = start + timedelta(seconds=instances * spacing, hours=2)
    fold(HostHeartbeat(running=0), AGENT_HOST, "compute", last)
    gc.collect()
    print(rss_kib(os.getpid()), len(state.instances), len(state.billing.instances))


def _churn_run(instances: int, retention_seconds: float, months: int) -> tuple[int, ...]:
    out = subprocess.run(
        [sys.executable, __file__, "--churn-child", str(instances), str(retention_seconds),
         str(months)],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return tuple(int(figure) for figure in out)


def measure_churn(instances: int, runs: int) -> None:
    def median(count: int, retention_seconds: float, months: int) -> tuple[float, int, int]:
        readings = sorted(_churn_run(count, retention_seconds, months) for _ in range(runs))
        return readings[len(readings) // 2][0] / 1024, readings[0][1], readings[0][2]

    empty, _, _ = median(0, 3600.0, 0)
    print(f"\ngateway projection, {instances} instances created and deleted "
          f"(fold in-process; median of {runs} processes)")  # fmt: skip
    for label, (seconds, months) in CHURN_RETENTIONS.items():
        rss, kept, usage = median(instances, seconds, months)
        print(f"  churn RSS, {label:<16} {rss:>7.0f} MiB   empty projection {empty:.0f} MiB   "
              f"({kept} instances, {usage} usage records remembered)")  # fmt: skip


def main() -> None:
    if sys.argv[1:2] == ["--churn-child"]:
        churn_child(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--instances", type=int, default=100_000)
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--churn-runs", type=int, default=3)
    parser.add_argument("--churn-only", action="store_true")
    args = parser.parse_args()
    if args.churn_only:
        measure_churn(args.instances, args.churn_runs)
        return
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk")
    namespace, empty = f"fleet{uuid.uuid4().hex[:8]}", f"empty{uuid.uuid4().hex[:8]}"
    topics = fleet(namespace, args.instances, args.hosts)
    began = time.perf_counter()
    settings = KafkaSettings(bootstrap_servers=args.bootstrap, namespace=namespace)
    asyncio.run(write_fleet(settings, topics))
    count = sum(len(envelopes) for envelopes in topics.values())
    print(f"{args.instances} instances on {args.hosts} hosts: {count} events written in "
          f"{time.perf_counter() - began:.1f} s\n")  # fmt: skip
    asyncio.run(ensure_topics(settings, virga_topics(namespace=empty)))
    token = secrets.token_urlsafe(32)
    with tempfile.TemporaryDirectory(prefix="virga-fleet-bench-") as tmp:
        run_dir = Path(tmp)
        fleet_services = services(run_dir, args.bootstrap, namespace, token)
        measure_memory(run_dir, fleet_services, services(run_dir, args.bootstrap, empty, token))
        some_instance = next(e.aggregate_id for e in topics[event_topic("scheduler", namespace)])
        measure_gets(run_dir, fleet_services[0], token, some_instance, args.seconds)
    measure_churn(args.instances, args.churn_runs)


if __name__ == "__main__":
    main()
