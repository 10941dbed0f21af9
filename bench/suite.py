"""Every headline figure of Virga in one table: `make bench` (or `python bench/suite.py`).

Starts a fresh local Kafka broker of its own (`--kafka-port`, 19290), runs the benchmarks that
measure the control plane as a whole, each as its own process, and reads their summary lines:

- boots through the whole stack (`boot_bench.py`): throughput, p50/p99 POST→RUNNING, and the
  POST alone as baseline;
- placement at 10,000 hosts (`scheduler_bench.py`), against filtering every host;
- a rebalancing plan for 1,000 hosts and 20,000 instances (`rebalance_bench.py`), against
  scoring the cluster once;
- rebuild from the log (`rebuild_bench.py`), against a raw aiokafka read of the same topic;
- a 100,000-instance cloud (`fleet_bench.py`): resident memory per service against the same
  service on an empty log, and gateway GETs/s on one core (wrk) against `/healthz`; and the
  gateway's memory after 100,000 instances were created and deleted, against an empty one;
- replication (`replication_bench.py`, its own single broker and 3-broker cluster): keyed
  POST throughput and p99 on 3 copies against one, and the first write after the leader of
  ``<ns>.api`` is killed;
- floating IPs (`floating_ip_bench.py`, namespaces of its own): association to the first
  ping reply from the internet, p50/p99, against the same address and NAT elements added by
  hand; the 1,000th association's cost against the 1st's (and a whole-table reload's);
- the web console (`web_bench.py`, Debian's headless Chromium): an event in the log to its
  row in an open page, p50/p95/p99 with 200 instances booting, against the gateway's own GET
  in the same run; the list of 1,000 instances rendered, against its API pages; the first
  load to the login form, against /healthz in the same browser; the JavaScript it ships;
- a stock image's boot (`guest_boot_bench.py`, Ceph on `--ceph-port`): Debian 12 through
  the whole stack, POST to first SSH login, against the same image under plain libvirt with
  a config drive, domain start to first SSH login (target: under 2 s more).

`--quick` runs every bench at a tenth of its size (a smoke test of the suite itself). Each
bench's whole output goes to `<--out>/<bench>.txt`; a bench whose summary lines are not found
stops the suite, naming it. The component benches (volumes, IPAM, port binding, replay,
attach) have their own commands in docs/performance.md.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from virga_devstack.kafka import KafkaBroker

HERE = Path(__file__).resolve().parent
NUMBER = r"([\d,]+(?:\.\d+)?)"


@dataclass(frozen=True)
class Row:
    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _find(output: str, pattern: str, bench: str) -> re.Match[str]:
    match = re.search(pattern, output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"{bench}: no line matches {pattern!r}; see its output file")
    return match


def _ratio(value: float, baseline: float) -> str:
    return f"{value / baseline:.2f}x"


def boot_rows(out: str) -> list[Row]:
    rate = _find(out, rf"throughput:\s+{NUMBER} boots/s", "boot_bench")
    lat = _find(out, rf"POST→RUNNING latency: p50\s+{NUMBER} ms\s+p99\s+{NUMBER} ms", "boot")
    post = _find(out, rf"POST→202 alone: p50\s+{NUMBER} ms\s+p99\s+{NUMBER} ms", "boot_bench")
    return [
        Row("boots/s, whole stack, 50 concurrent", rate[1]),
        Row("boot latency p50 (POST→RUNNING)", f"{lat[1]} ms", f"{post[1]} ms POST→202"),
        Row("boot latency p99", f"{lat[2]} ms", f"{post[2]} ms POST→202"),
    ]


def scheduler_rows(out: str) -> list[Row]:
    spread = _find(out, rf"spread \(default\)\s+\d+\s+{NUMBER}$", "scheduler_bench")
    brute = _find(out, rf"every filter on every host\s+\d+\s+{NUMBER}$", "scheduler_bench")
    value, baseline = _num(spread[1]), _num(brute[1])
    return [
        Row(
            "placement decisions/s, 10,000 hosts",
            spread[1],
            f"{brute[1]} every filter on every host",
            _ratio(value, baseline),
        )
    ]


def rebalance_rows(out: str) -> list[Row]:
    planned = _find(out, rf"^plan \(greedy, incremental score\)\s+{NUMBER}", "rebalance_bench")
    scored = _find(out, rf"^baseline: score the cluster once\s+{NUMBER}", "rebalance_bench")
    return [
        Row(
            "rebalancing plan, 1,000 hosts / 20,000 instances",
            f"{planned[1]} ms",
            f"{scored[1]} ms to score the cluster once",
            _ratio(_num(planned[1]), _num(scored[1])),
        )
    ]


def rebuild_rows(out: str) -> list[Row]:
    raw = _find(out, rf"raw aiokafka read.*:\s+{NUMBER} events/s", "rebuild_bench")
    rebuilt = _find(out, rf"rebuild \(decode.*:\s+{NUMBER} events/s", "rebuild_bench")
    restart = _find(out, rf"restart to ready from a snapshot.*median: {NUMBER} s", "rebuild")
    return [
        Row(
            "rebuild events/s",
            rebuilt[1],
            f"{raw[1]} raw consume",
            _ratio(_num(rebuilt[1]), _num(raw[1])),
        ),
        Row("restart to ready from a snapshot", f"{restart[1]} s"),
    ]


def fleet_rows(out: str) -> list[Row]:
    rows = []
    for match in re.finditer(
        rf"^(\w+)\s+{NUMBER} MiB\s+{NUMBER} MiB\s+{NUMBER}s$", out, re.MULTILINE
    ):
        service, full, empty = match[1], match[2], match[3]
        figure = f"RSS {service}, 100k instances in the log"
        rows.append(Row(figure, f"{full} MiB", f"{empty} MiB empty log"))
    if not rows:
        raise SystemExit("fleet_bench: no memory lines; see its output file")
    health = _find(out, rf"baseline: GET /healthz\s+{NUMBER} requests/s", "fleet_bench")
    for label in ("GET /v1/instances/{id}", "GET /v1/instances?limit=50"):
        got = _find(out, rf"{re.escape(label)}\s+{NUMBER} requests/s", "fleet_bench")
        rows.append(
            Row(
                f"gateway {label}, req/s on one core",
                got[1],
                f"{health[1]} /healthz",
                _ratio(_num(got[1]), _num(health[1])),
            )
        )
    for match in re.finditer(
        rf"churn RSS, ([\w ]+?)\s+{NUMBER} MiB\s+empty projection {NUMBER} MiB", out
    ):
        figure = f"RSS gateway after 100k instances created+deleted, {match[1]}"
        rows.append(Row(figure, f"{match[2]} MiB", f"{match[3]} MiB empty projection"))
    return rows


def replication_rows(out: str) -> list[Row]:
    rate, p50, p99 = (rf"\s+{NUMBER}" for _ in range(3))
    single = _find(out, rf"^single broker, 1 copy \(baseline\){rate}{p50}{p99}$", "replication")
    three = _find(out, rf"^3 brokers, 3 copies, min.insync 2{rate}{p50}{p99}$", "replication")
    kill = _find(out, rf"first write after median {NUMBER} s", "replication_bench")
    return [
        Row(
            "keyed POST/s, 3 brokers (3 copies, 2 in sync)",
            three[1],
            f"{single[1]} single broker",
            _ratio(_num(three[1]), _num(single[1])),
        ),
        Row(
            "keyed POST p99, 3 brokers",
            f"{three[3]} ms",
            f"{single[3]} ms single broker",
            _ratio(_num(three[3]), _num(single[3])),
        ),
        Row("first write after the <ns>.api leader's kill", f"{kill[1]} s"),
    ]


def guest_boot_rows(out: str) -> list[Row]:
    ssh = _find(out, rf"domain start→first SSH: median {NUMBER} s", "guest_boot_bench")
    done = _find(out, rf"domain start→cloud-init done: median {NUMBER} s", "guest_boot_bench")
    virga = _find(out, rf"Virga POST→first SSH: median {NUMBER} s", "guest_boot_bench")
    control = _find(out, rf"Virga POST→InstanceStarted: median {NUMBER} s", "guest_boot_bench")
    diff = _find(out, r"first SSH: median ([+-][\d.]+) s \(target < 2 s: (\w+)\)", "guest_boot")
    return [
        Row("debian-12 first SSH, plain libvirt + config drive", f"{ssh[1]} s", "(baseline)"),
        Row("debian-12 cloud-init done, same boot", f"{done[1]} s", "(baseline)"),
        Row("debian-12 first SSH through Virga (POST→SSH)", f"{virga[1]} s", f"{ssh[1]} s plain"),
        Row("  of which POST→InstanceStarted", f"{control[1]} s", "(the control plane)"),
        Row("  Virga - plain (target < 2 s)", f"{diff[1]} s", diff[2]),
    ]


def floating_ip_rows(out: str) -> list[Row]:
    lat = rf"p50 {NUMBER} ms\s+p99 {NUMBER} ms"
    driver = _find(out, rf"first reply, driver \(ensure_router\): {lat}", "floating_ip_bench")
    manual = _find(out, rf"first reply, by hand \(ip \+ nft\): {lat}", "floating_ip_bench")
    growth = rf"^([\d,]+)th association vs 1st: {NUMBER}x \({NUMBER} ms vs {NUMBER} ms"
    reload = rf"whole-table reload at [\d,]+: {NUMBER} ms"
    grown = _find(out, rf"{growth}, medians of 10\); .*{reload}", "floating_ip_bench")
    return [
        Row(
            "floating IP associate→first reply p50",
            f"{driver[1]} ms",
            f"{manual[1]} ms by hand (ip + nft)",
            _ratio(_num(driver[1]), _num(manual[1])),
        ),
        Row(
            "floating IP associate→first reply p99",
            f"{driver[2]} ms",
            f"{manual[2]} ms by hand (ip + nft)",
            _ratio(_num(driver[2]), _num(manual[2])),
        ),
        Row(
            f"floating IP association, the {grown[1]}th (median of 10)",
            f"{grown[3]} ms",
            f"{grown[4]} ms 1st-10th; {grown[5]} ms reload",
            f"{grown[2]}x",
        ),
    ]


def web_rows(out: str) -> list[Row]:
    rows = []
    for q in ("p50", "p95", "p99"):
        got = _find(
            out,
            rf"{q}: InstanceStarted→row RUNNING\s+{NUMBER} ms.*baseline GET\s+{NUMBER} ms",
            "web",
        )
        rows.append(
            Row(
                f"web: event→row RUNNING in an open page {q}, 200 booting",
                f"{got[1]} ms",
                f"{got[2]} ms GET /v1/instances/{{id}}",
                _ratio(_num(got[1]), _num(got[2])),
            )
        )
    listed = _find(
        out,
        rf"list of ([\d,]+) instances: navigation→rendered\s+{NUMBER} ms\s+"
        rf"baseline API pages alone\s+{NUMBER} ms",
        "web_bench",
    )
    first = _find(
        out,
        rf"navigation→login form\s+{NUMBER} ms\s+baseline /healthz page\s+{NUMBER} ms",
        "web_bench",
    )
    ships = _find(out, rf"of which JS {NUMBER} kB, {NUMBER} kB gzipped", "web_bench")
    return [
        *rows,
        Row(
            f"web: list of {listed[1]} instances, navigation→rendered",
            f"{listed[2]} ms",
            f"{listed[3]} ms its API pages",
            _ratio(_num(listed[2]), _num(listed[3])),
        ),
        Row(
            "web: first load, navigation→login form",
            f"{first[1]} ms",
            f"{first[2]} ms /healthz in the browser",
            _ratio(_num(first[1]), _num(first[2])),
        ),
        Row("web: first load's JavaScript, gzipped", f"{ships[2]} kB", f"{ships[1]} kB raw"),
    ]


def run(name: str, args: list[str], out_dir: Path, parse: Callable[[str], list[Row]]) -> list[Row]:
    began = time.perf_counter()
    print(f"running {name} ...", flush=True)
    result = subprocess.run(
        [sys.executable, str(HERE / name), *args], capture_output=True, text=True, check=False
    )
    (out_dir / f"{Path(name).stem}.txt").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"{name} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    print(f"  done in {time.perf_counter() - began:.0f} s", flush=True)
    return parse(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kafka-port", type=int, default=19290)
    parser.add_argument("--ceph-port", type=int, default=16789, help="guest_boot_bench's Ceph")
    parser.add_argument("--quick", action="store_true", help="a tenth of every size")
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scale = 10 if args.quick else 1
    broker = KafkaBroker(args.kafka_port)
    broker.start(fresh=True)
    bootstrap = ["--bootstrap", broker.bootstrap_servers]
    try:
        rows = [
            *run("boot_bench.py", [*bootstrap, "--boots", str(600 // scale)], args.out, boot_rows),
            *run("scheduler_bench.py", [], args.out, scheduler_rows),
            *run("rebalance_bench.py", [], args.out, rebalance_rows),
            *run(
                "rebuild_bench.py",
                [*bootstrap, "--events", str(1_000_000 // scale), "--runs", "3"],
                args.out,
                rebuild_rows,
            ),
            *run(
                "fleet_bench.py",
                [*bootstrap, "--instances", str(100_000 // scale), "--seconds", "10"],
                args.out,
                fleet_rows,
            ),
            *run(
                "replication_bench.py",
                ["--posts", str(1000 // scale), "--kills", "1" if args.quick else "3"],
                args.out,
                replication_rows,
            ),
            *run(
                "floating_ip_bench.py",
                ["--associations", str(50 // scale), "--fips", str(1000 // scale)],
                args.out,
                floating_ip_rows,
            ),
            *run(
                "web_bench.py",
                [
                    *bootstrap,
                    "--boots",
                    str(200 // scale),
                    "--list",
                    str(1000 // scale),
                    "--runs",
                    "1" if args.quick else "3",
                ],
                args.out,
                web_rows,
            ),
            *run(
                "guest_boot_bench.py",
                [*bootstrap, "--ceph-port", str(args.ceph_port)],
                args.out,
                guest_boot_rows,
            ),
        ]
    finally:
        broker.stop()
    width = max(len(r.figure) for r in rows)
    print(f"\n{'figure':<{width}}  {'value':>12}  {'baseline (same run)':<36} {'ratio':>7}")
    for row in rows:
        print(f"{row.figure:<{width}}  {row.value:>12}  {row.baseline:<36} {row.ratio:>7}")
    if args.quick:
        print("\n(--quick: a tenth of every size; not figures to quote)")


if __name__ == "__main__":
    main()
