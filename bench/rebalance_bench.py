"""The rebalancer's plan for 1,000 hosts and 20,000 instances, against scoring the cluster once.

Run: ``python bench/rebalance_bench.py`` (from the repository root, in the project's venv).
The cluster: 1,000 hosts in 40 racks over 2 zones, two host sizes, 20,000 instances of five
flavors placed unevenly (a third of the hosts hold most of them), 5% of them in server groups
(host and rack scope, affinity and anti-affinity), some asking for a zone. The figure is the
median wall time of ``plan`` over 3 runs; the baseline, in the same run, is the time to score
the cluster once from scratch (``score``), the unit of work a naive greedy repeats per
candidate move. The target is a plan in under a second.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from virga_rebalance import Group, HostInput, InstanceInput, Options, plan, score

FLAVORS = [(1, 2048, 20), (2, 4096, 40), (4, 8192, 80), (8, 16384, 160), (2, 8192, 40)]


def build(
    hosts: int, instances: int, seed: int = 7
) -> tuple[list[HostInput], list[InstanceInput], list[Group]]:
    rng = random.Random(seed)
    sizes = [(128, 524_288, 8_000), (64, 262_144, 4_000)]
    shapes = {f"h{i:04d}": sizes[i % 2] for i in range(hosts)}
    names = sorted(shapes)
    limits = {n: (v * 4.0, float(r), float(d)) for n, (v, r, d) in shapes.items()}
    used = {n: [0, 0, 0] for n in names}
    groups = [
        Group(f"g{i}", "anti-affinity" if i % 2 else "affinity", "rack" if i % 3 == 0 else "host")
        for i in range(100)
    ]
    racks = {n: f"r{i % 40:02d}" for i, n in enumerate(names)}
    heavy = names[: hosts // 3]
    placed, members_at = [], set()
    for i in range(instances):
        vcpus, ram, disk = rng.choice(FLAVORS)
        group = groups[i % 100] if rng.random() < 0.05 else None
        pool = heavy if rng.random() < 0.7 else names
        for _ in range(50):
            host = rng.choice(pool)
            u, lim = used[host], limits[host]
            if u[0] + vcpus > lim[0] or u[1] + ram > lim[1] or u[2] + disk > lim[2]:
                continue
            if group is not None and group.policy == "anti-affinity":
                where = racks[host] if group.scope == "rack" else host
                if (group.id, where) in members_at:
                    continue
                members_at.add((group.id, where))
            break
        else:
            continue
        used[host][0] += vcpus
        used[host][1] += ram
        used[host][2] += disk
        zone = ("z0" if int(host[1:]) % 2 == 0 else "z1") if rng.random() < 0.1 else None
        placed.append(
            InstanceInput(
                f"i{i:05d}", host, vcpus, ram, disk, zone=zone, group=group.id if group else None
            )
        )
    fleet = [
        HostInput(
            n,
            racks[n],
            "z0" if int(n[1:]) % 2 == 0 else "z1",
            *limits[n],
            used_vcpus=used[n][0],
            used_ram_mb=used[n][1],
            used_disk_gb=used[n][2],
        )
        for n in names
    ]
    # Instances asked for the zone of the host they landed on (so the input is valid).
    placed = [
        i
        if i.zone is None
        else InstanceInput(
            i.id,
            i.host,
            i.vcpus,
            i.ram_mb,
            i.disk_gb,
            zone="z0" if int(i.host[1:]) % 2 == 0 else "z1",
            group=i.group,
        )
        for i in placed
    ]
    return fleet, placed, groups


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=1_000)
    parser.add_argument("--instances", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-moves", type=int, default=100)
    args = parser.parse_args()
    hosts, instances, groups = build(args.hosts, args.instances)
    options = Options(max_moves=args.max_moves)
    times, result = [], None
    for _ in range(args.runs):
        started = time.perf_counter()
        result = plan(hosts, instances, groups, options)
        times.append(time.perf_counter() - started)
    assert result is not None
    scores = []
    for _ in range(args.runs):
        started = time.perf_counter()
        score(hosts, options)
        scores.append(time.perf_counter() - started)
    again = plan(hosts, instances, groups, options)
    assert again == result, "the plan is not deterministic"
    print(f"cluster: {len(hosts)} hosts, {len(instances)} instances, {len(groups)} server groups")
    print(
        f"plan: {len(result.moves)} moves, score {result.score_before:.4f} ->"
        f" {result.score_after:.4f}"
    )
    plan_ms, score_ms = statistics.median(times) * 1000, statistics.median(scores) * 1000
    print(f"{'':34}{'median ms':>10}  runs (ms)")
    print(
        f"{'plan (greedy, incremental score)':34}{plan_ms:10.1f}  "
        + ", ".join(f"{t * 1000:.1f}" for t in times)
    )
    print(
        f"{'baseline: score the cluster once':34}{score_ms:10.2f}  "
        + ", ".join(f"{t * 1000:.2f}" for t in scores)
    )
    print(f"target: plan under 1000 ms: {'met' if plan_ms < 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
