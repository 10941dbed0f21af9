"""The scheduler service's decision path at 10,000 hosts, against the bare placement loop.

Run: ``python bench/scheduler_service_bench.py`` (from the repository root, in the project's
venv). Both sides place the same requests on the same fleet, in the same run:

- service: per ``InstanceRequested`` envelope, what the runtime does minus Kafka: ``evolve``,
  ``decide`` (``select_host``, logging), then wrap each emitted event in an envelope and
  ``evolve`` it (that fold takes the claim);
- baseline: ``select_host`` then ``view.claim``, as ``bench/scheduler_bench.py`` times it.

The bench checks both choose the same hosts, then prints decisions/s (median of 5 runs) and
the ratio: what the service's bookkeeping (records, events, logging) costs per decision. It
times placements and refusals (a required trait no host has) apart: a refusal explains every
host, so it costs a pass over the fleet, and the service logs each rejection at debug.
"""

from __future__ import annotations

import logging
import os
import random
import statistics
import sys
import time
from dataclasses import replace

import structlog

from virga_events import Envelope, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested, ServerGroupCreated
from virga_events.catalog.compute import HostRegistered
from virga_events.catalog.scheduler import HostMarkedDown, InstanceScheduled
from virga_runtime import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.decide import decide
from virga_scheduler.core.fold import evolve
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.core.placement import (
    Host,
    Placement,
    PlacementRequest,
    PlacementView,
    ServerGroup,
    select_host,
)

HOSTS, RACKS, ZONES, REQUESTS, REFUSALS, RUNS = 10_000, 100, 3, 5_000, 50, 5
FLAVORS = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 16384, 160), (16, 65536, 320)]
GROUPS = {f"anti-rack-{n}": ("anti-affinity", "rack") for n in range(50)} | {
    f"aff-host-{n}": ("affinity", "host") for n in range(50)
}


def fleet(rng: random.Random) -> list[Host]:
    """100 racks of 100 hosts over 3 zones, mixed sizes, SSD on half the racks, ~1% down."""
    return [
        Host(
            name=f"h{i:05d}",
            rack=f"r{i % RACKS:03d}",
            zone=f"az{i % RACKS % ZONES + 1}",
            vcpus=rng.choice((32, 48, 64)),
            ram_mb=rng.choice((131072, 262144, 524288)),
            disk_gb=rng.choice((1920, 3840)),
            traits=frozenset({"SSD"} if i % RACKS % 2 else ()),
            state="down" if rng.random() < 0.01 else "up",
        )
        for i in range(HOSTS)
    ]


def requests(rng: random.Random) -> list[Envelope]:
    """Plain requests mixed with zones, a required trait, and server groups of 10 at most."""
    out = []
    group_names = sorted(GROUPS)
    for n in range(REQUESTS):
        vcpus, ram_mb, disk_gb = rng.choice(FLAVORS)
        roll = rng.random()
        group = group_names[n % len(group_names)] if roll < 0.2 and n < 1000 else None
        payload = InstanceRequested(
            name=f"vm{n}",
            flavor=Flavor(name=f"f{vcpus}", vcpus=vcpus, ram_mb=ram_mb, disk_gb=disk_gb),
            server_group=group,
            availability_zone=f"az{n % ZONES + 1}" if not group and roll > 0.67 else None,
            required_traits=("SSD",) if 0.2 <= roll < 0.3 else (),
        )
        out.append(new_event(payload, aggregate_id=f"i{n:05d}", tenant_id="t", producer="b"))
    return out


def service_state(hosts: list[Host]) -> SchedulerState:
    state = SchedulerState()
    for host in hosts:
        registered = HostRegistered(
            rack=host.rack,
            zone=host.zone,
            vcpus=host.vcpus,
            ram_mb=host.ram_mb,
            disk_gb=host.disk_gb,
            traits=tuple(host.traits),
        )
        state = evolve(
            state,
            new_event(
                registered, aggregate_id=host.name, tenant_id=None, producer=f"compute@{host.name}"
            ),
        )
        if host.state == "down":
            down = HostMarkedDown(last_heartbeat_at=None)
            state = evolve(
                state, new_event(down, aggregate_id=host.name, tenant_id=None, producer="scheduler")
            )
    for group_id, (policy, scope) in GROUPS.items():
        created = ServerGroupCreated(name=group_id, policy=policy, scope=scope)  # type: ignore[arg-type]
        state = evolve(
            state, new_event(created, aggregate_id=group_id, tenant_id="t", producer="gateway")
        )
    state.view()  # built once, as the first live decision would
    return state


def run_service(
    state: SchedulerState, inputs: list[Envelope], config: SchedulerConfig
) -> list[str]:
    chosen = []
    for envelope in inputs:
        state = evolve(state, envelope)
        host = "-"
        for intent in decide(config, state, envelope):
            assert isinstance(intent, Emit)
            emitted = new_event(
                intent.payload,
                aggregate_id=intent.aggregate_id,
                tenant_id=intent.tenant_id,
                producer="scheduler",
                causation=envelope,
            )
            state = evolve(state, emitted)
            if isinstance(intent.payload, InstanceScheduled):
                host = intent.payload.host
        chosen.append(host)
    return chosen


def baseline_view(
    hosts: list[Host], inputs: list[Envelope]
) -> tuple[PlacementView, list[PlacementRequest]]:
    placement_requests: list[PlacementRequest] = []
    members: dict[str, set[str]] = {}
    for envelope in inputs:
        asked: InstanceRequested = envelope.payload
        placement_requests.append(
            PlacementRequest(
                envelope.aggregate_id,
                "t",
                asked.flavor.vcpus,
                asked.flavor.ram_mb,
                asked.flavor.disk_gb,
                asked.availability_zone,
                asked.server_group,
                frozenset(asked.required_traits),
            )
        )
        if asked.server_group:
            members.setdefault(asked.server_group, set()).add(envelope.aggregate_id)
    groups = [ServerGroup(g, p, s, frozenset(members.get(g, ()))) for g, (p, s) in GROUPS.items()]  # type: ignore[arg-type]
    return PlacementView(hosts, server_groups=groups), placement_requests


def run_baseline(view: PlacementView, placement_requests: list[PlacementRequest]) -> list[str]:
    chosen = []
    for request in placement_requests:
        result = select_host(request, view)
        if isinstance(result, Placement):
            view = view.claim(request, result.host)
            chosen.append(result.host)
        else:
            chosen.append("-")
    return chosen


def measure(
    hosts: list[Host], inputs: list[Envelope], config: SchedulerConfig
) -> tuple[float, float, int]:
    """Median decisions/s of the service path and of the bare loop, and how many placed."""
    service_rates, baseline_rates = [], []
    by_service: list[str] = []
    for _ in range(RUNS):
        state = service_state(hosts)
        started = time.perf_counter()
        by_service = run_service(state, inputs, config)
        service_rates.append(len(inputs) / (time.perf_counter() - started))

        view, placement_requests = baseline_view(hosts, inputs)
        started = time.perf_counter()
        by_baseline = run_baseline(view, placement_requests)
        baseline_rates.append(len(inputs) / (time.perf_counter() - started))
        if by_service != by_baseline:
            sys.exit("the service and the bare loop chose different hosts")
    placed = sum(h != "-" for h in by_service)
    return statistics.median(service_rates), statistics.median(baseline_rates), placed


def main() -> None:
    with open(os.devnull, "w") as devnull:
        # Logs as the service writes them (JSON at info, rejections at debug), into the void.
        structlog.configure(
            processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.PrintLoggerFactory(file=devnull),
            cache_logger_on_first_use=True,
        )
        rng = random.Random(42)
        hosts, inputs = fleet(rng), requests(rng)
        # Refusals explain every host (one pass over the fleet), so they are timed apart.
        impossible = [
            new_event(
                replace(e.payload, required_traits=("CUSTOM_FPGA",)),
                aggregate_id=f"x{n}",
                tenant_id="t",
                producer="b",
            )
            for n, e in enumerate(inputs[:REFUSALS])
        ]
        config = SchedulerConfig()
        print(f"{HOSTS} hosts, median of {RUNS} runs, decisions/s")
        for label, workload in (("placements", inputs), ("refusals", impossible)):
            service, baseline, placed = measure(hosts, workload, config)
            print(
                f"  {label:<10} ({len(workload)} requests, {placed} placed):"
                f" service decide+evolve {service:9,.0f}  bare select_host+claim"
                f" {baseline:9,.0f}  ratio {service / baseline:.2f}"
            )


if __name__ == "__main__":
    main()
