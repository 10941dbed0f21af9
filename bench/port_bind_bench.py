"""Ports bound per second by one network agent's convergence, on the real netlink/nftables
driver inside a network namespace the benchmark creates (and removes).

Usage (root): python bench/port_bind_bench.py [--ports 200] [--runs 3]

Three figures per run, each on a fresh namespace:
* batch: one plan with every port at once (an agent catching up after a start, or a burst of
  boots in one tick): taps made and attached, one nftables ruleset for all, PortBound events.
* one by one: a plan per new port, as ports arrive slower than the sync interval; every step
  re-renders and reloads the host's whole ruleset, so this is the worst case.
* baseline: raw pyroute2 in the same thread, the same number of veth pairs made and attached
  to one bridge: the netlink floor under any agent.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from virga_network.agent.core import names
from virga_network.agent.core.plan import HostPlan, PortPlan, zone
from virga_network.agent.core.plumbing import FilterRule, NetworkPlumbing, PortFilter
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

PREFIX = "vh4"
VNI = 1001
RULES = (
    FilterRule(direction="egress"),
    FilterRule(direction="ingress", protocol="tcp", port_min=22, port_max=22),
    FilterRule(direction="ingress", remote=("10.0.0.0/16",)),
)


def netns(name: str, *command: str) -> None:
    subprocess.run(["ip", "netns", *command, name], check=True)


def plan(count: int) -> HostPlan:
    network = NetworkPlumbing(
        network_id="bench-net",
        vni=VNI,
        bridge=names.bridge_name("bench-net", PREFIX),
        vxlan=names.vxlan_name("bench-net", PREFIX),
        flood=("192.0.2.2",),
    )
    ports = tuple(
        PortPlan(
            port_id=f"port-{i}",
            tenant_id="t",
            network_id="bench-net",
            bridge=network.bridge,
            filter=PortFilter(
                tap=names.tap_name(f"port-{i}", PREFIX),
                mac=f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
                ips=(f"10.0.{i >> 8}.{i & 0xFF}",),
                zone=zone(VNI),
                rules=RULES,
            ),
            instance_id=None,
            report=True,
        )
        for i in range(count)
    )
    return HostPlan("bench", "192.0.2.1", (network,), ports, ())


async def agent_batch(ns: str, count: int) -> float:
    driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns)
    try:
        await driver.prepare()
        effects = AgentEffects(driver)
        started = time.perf_counter()
        emits = await effects.converge(Converge(plan(count)))
        elapsed = time.perf_counter() - started
    finally:
        await driver.close()
    assert len(emits) == count, emits[:3]
    return count / elapsed


async def agent_one_by_one(ns: str, count: int) -> float:
    driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns)
    full = plan(count)
    try:
        await driver.prepare()
        effects = AgentEffects(driver)
        started = time.perf_counter()
        bound = 0
        for n in range(1, count + 1):
            # Ports bound by earlier steps have been reported (the agent folded its PortBound).
            reported = tuple(dataclasses.replace(p, report=False) for p in full.ports[: n - 1])
            ports = (*reported, full.ports[n - 1])
            step = HostPlan(full.host, full.vtep_ip, full.networks, ports, ())
            bound += len(await effects.converge(Converge(step)))
        elapsed = time.perf_counter() - started
    finally:
        await driver.close()
    assert bound == count
    return count / elapsed


def baseline(ns: str, count: int) -> float:
    from pyroute2 import IPRoute
    from pyroute2.netns import setns

    def run() -> float:
        setns(ns, flags=0)  # this thread only
        with IPRoute() as ip:
            ip.link("add", ifname="vh4benchbr", kind="bridge")
            bridge = ip.link_lookup(ifname="vh4benchbr")[0]
            started = time.perf_counter()
            for i in range(count):
                name = f"vh4raw{i}"
                ip.link("add", ifname=name, kind="veth", peer={"ifname": f"{name}p"})
                index = ip.link_lookup(ifname=name)[0]
                ip.link("set", index=index, master=bridge, state="up")
            return count / (time.perf_counter() - started)

    result: list[float] = []
    import threading

    thread = threading.Thread(target=lambda: result.append(run()))
    thread.start()
    thread.join()
    return result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows: dict[str, list[float]] = {"batch": [], "one by one": [], "baseline": []}
    for run in range(args.runs):
        for label in rows:
            ns = f"vh4bench{uuid.uuid4().hex[:6]}"
            netns(ns, "add")
            try:
                if label == "batch":
                    rate = asyncio.run(agent_batch(ns, args.ports))
                elif label == "one by one":
                    rate = asyncio.run(agent_one_by_one(ns, args.ports))
                else:
                    rate = baseline(ns, args.ports)
            finally:
                netns(ns, "del")
            rows[label].append(rate)
            print(f"run {run + 1} {label:>10}: {rate:8.1f} ports/s", flush=True)
    print(f"\n{args.ports} ports, median of {args.runs} runs (ports/s):")
    for label, rates in rows.items():
        print(f"  {label:>10}: {statistics.median(rates):8.1f}")


if __name__ == "__main__":
    main()
