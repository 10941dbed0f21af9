"""Placement throughput at 10,000 hosts, against a filter-every-host scheduler in the same run.

Run: ``python bench/scheduler_bench.py`` (from the repository root, in the project's venv).
Each cycle is what the scheduler service does per ``InstanceRequested``: ``select_host`` then
``view.claim``. The baseline makes the same decisions the way Nova's filter scheduler does
(every filter on every host, then the best weighed host); the bench checks they agree.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from collections.abc import Callable

from virga_scheduler.core.placement import (
    Host,
    NoValidHost,
    Placement,
    PlacementRequest,
    PlacementView,
    Policy,
    ServerGroup,
    Weigher,
    select_host,
)
from virga_scheduler.core.placement.scheduler import first_rejection

HOSTS, RACKS, ZONES = 10_000, 100, 3
CYCLES, BASELINE_CYCLES, RUNS = 5_000, 100, 5
FLAVORS = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 16384, 160), (16, 65536, 320)]

Decide = Callable[[PlacementRequest, PlacementView], Placement | NoValidHost]


def build_fleet(rng: random.Random) -> list[Host]:
    """100 racks of 100 hosts over 3 zones; mixed sizes, SSD on half the racks, GPUs in 2 racks,
    about 1% of hosts down and 1% disabled."""
    hosts = []
    for i in range(HOSTS):
        rack = i % RACKS
        traits = {"SSD"} if rack % 2 else set()
        if rack in (7, 8):
            traits.add("CUSTOM_GPU")
        hosts.append(
            Host(
                name=f"h{i:05d}",
                rack=f"r{rack:03d}",
                zone=f"az{rack % ZONES + 1}",
                vcpus=rng.choice((32, 48, 64)),
                ram_mb=rng.choice((131072, 262144, 524288)),
                disk_gb=rng.choice((1920, 3840)),
                traits=frozenset(traits),
                state="down" if rng.random() < 0.01 else "up",
                enabled=rng.random() >= 0.01,
            )
        )
    return hosts


def build_requests(rng: random.Random) -> tuple[list[PlacementRequest], list[ServerGroup]]:
    """A mix of plain requests and ones with zones, traits, server groups and excluded hosts."""
    requests: list[PlacementRequest] = []
    members: dict[str, set[str]] = {}
    kinds = ["anti-host", "anti-rack", "aff-host", "aff-rack"]
    for n in range(CYCLES):
        vcpus, ram_mb, disk_gb = rng.choice(FLAVORS)
        roll = rng.random()
        # Groups of at most 10 members, Nova's default quota; members ask for no zone, as a
        # zone that differs from the first member's would be refused by design.
        group = f"{kinds[n % 4]}-{n % 100}" if roll < 0.2 else None
        request = PlacementRequest(
            instance_id=f"i{n:05d}",
            tenant_id=f"t{n % 97}",
            vcpus=vcpus,
            ram_mb=ram_mb,
            disk_gb=disk_gb,
            availability_zone=f"az{n % ZONES + 1}" if not group and rng.random() < 0.33 else None,
            server_group_id=group,
            required_traits=frozenset({"SSD"} if 0.2 <= roll < 0.3 else ()),
            excluded_hosts=frozenset({f"h{rng.randrange(HOSTS):05d}"} if roll > 0.97 else ()),
        )
        requests.append(request)
        if group:
            members.setdefault(group, set()).add(request.instance_id)
    server_groups = [
        ServerGroup(g, "anti-affinity" if g.startswith("anti") else "affinity",
                    "rack" if "-rack-" in g else "host", frozenset(ids))
        for g, ids in sorted(members.items())
    ]  # fmt: skip
    return requests, server_groups


def brute_force(request: PlacementRequest, view: PlacementView) -> Placement | NoValidHost:
    """Nova's way: every filter on every host, then the best weighed host that passed."""
    passing = [
        name
        for name in view.host_names()
        if first_rejection(view.hosts[name], request, view) is None
    ]
    if not passing:
        return NoValidHost(request.instance_id, "no host fits", ())
    best = min(passing, key=lambda name: view.rank_key(Weigher.SPREAD, name))
    return Placement(request.instance_id, best, ())


def run(decide: Decide, view: PlacementView, requests: list[PlacementRequest]) -> list[str]:
    """Decide and claim each request in turn; return the chosen hosts ("-" for no host)."""
    chosen = []
    for request in requests:
        result = decide(request, view)
        if isinstance(result, Placement):
            view = view.claim(request, result.host)
            chosen.append(result.host)
        else:
            chosen.append("-")
    return chosen


def rate(decide: Decide, view: PlacementView, requests: list[PlacementRequest]) -> float:
    """Decisions per second, median of RUNS runs from the same starting view."""
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run(decide, view, requests)
        rates.append(len(requests) / (time.perf_counter() - started))
    return statistics.median(rates)


def main() -> None:
    rng = random.Random(2024)
    started = time.perf_counter()
    requests, groups = build_requests(rng)
    view = PlacementView(build_fleet(rng), server_groups=groups)
    build_s = time.perf_counter() - started

    def pack(request: PlacementRequest, view: PlacementView) -> Placement | NoValidHost:
        return select_host(request, view, Policy(weigher=Weigher.PACK))

    head = requests[:BASELINE_CYCLES]
    if run(select_host, view, head) != run(brute_force, view, head):
        sys.exit("select_host and the brute-force baseline disagree")
    # More vCPUs than any host has: every host is examined, then every host explained.
    unplaceable = [PlacementRequest(f"x{n}", "t", 512, 1, 1) for n in range(20)]

    rows = [
        ("select_host + claim, spread (default)", CYCLES, rate(select_host, view, requests)),
        ("baseline: every filter on every host", BASELINE_CYCLES, rate(brute_force, view, head)),
        ("select_host + claim, pack", CYCLES, rate(pack, view, requests)),
        ("NoValidHost: nothing fits, full explanation", 20, rate(select_host, view, unplaceable)),
    ]
    spread_placed = sum(host != "-" for host in run(select_host, view, requests))
    pack_placed = sum(host != "-" for host in run(pack, view, requests))
    print(f"{HOSTS} hosts in {RACKS} racks, {ZONES} zones (view built in {build_s:.2f} s)")
    print(f"placed {spread_placed}/{CYCLES} with spread, {pack_placed}/{CYCLES} with pack")
    print(f"{'median of ' + str(RUNS) + ' runs':45} {'cycles':>6} {'decisions/s':>12}")
    for label, cycles, per_second in rows:
        print(f"{label:45} {cycles:6} {per_second:12,.0f}")
    ratio = rows[0][2] / rows[1][2]
    print(f"{'ratio to baseline (same decisions, checked)':45} {'':6} {ratio:11,.0f}x")


if __name__ == "__main__":
    main()
