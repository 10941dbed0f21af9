"""Floating IPs on one host: association to the first ping reply from the internet, and what
the 1,000th association costs against the 1st, on the network agent's real router driver
(`drivers/netlink_router`: namespace, legs, addresses, nftables NAT, gratuitous ARPs) in
namespaces the benchmark creates (and removes).

Usage (root): python bench/floating_ip_bench.py [--associations 50] [--fips 1000]

A host namespace holds the tenant network's bridge (a guest namespace on it at 10.0.0.11,
the kernel answering ping) and the external bridge (an "internet" namespace on it at the
external network's gateway address). One router is plumbed there as the agent would.

* associate → first reply: `ensure_router` with one more floating IP pointing at the guest,
  then echo requests every 5 ms from the internet namespace until the floating IP answers;
  dissociated again after each, a fresh address each time. Baseline in the same run: the
  same address and the same nftables map elements added by hand (`ip addr add`, one
  `nft -f`) to the router the driver made, then the same pings.
* the k-th association with k-1 already there, k up to --fips (each to its own fixed
  address): the median time of `ensure_router` over the 1st-10th and the 991st-1,000th, the
  nftables change it applies (its lines, and its time applied alone), and the table's rules.
  Baseline: a whole-table reload (`nft -f` of `nft_nat.render`) at that size, what a driver
  without incremental changes would pay per association.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import ipaddress
import logging
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog
from pyroute2.netns import setns

from virga_network.agent.core import names, nft_nat
from virga_network.agent.core.plumbing import FloatingNat, RouterInterface, RouterPlumbing, zone
from virga_network.agent.drivers import netlink_router

PREFIX = "vl5"
GUEST_IP, GATEWAY = "10.0.0.11", "10.0.0.1"
EXTERNAL = ipaddress.ip_network("198.18.0.0/16")
"""Benchmarking addresses (RFC 2544): the internet namespace is .0.1, the router .0.2."""
INTERNET_IP, SNAT_IP = "198.18.0.1", "198.18.0.2"
T = TypeVar("T")


def sh(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    command = [*(["ip", "netns", "exec", netns] if netns else []), *args]
    result = subprocess.run(command, input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: {result.stderr.strip()}")
    return result.stdout


def inside(netns: str, call: Callable[[], T]) -> T:
    """Run `call` on a thread inside `netns` (a socket keeps the namespace it was made in)."""
    result: list[T] = []

    def run() -> None:
        setns(netns, flags=0)
        result.append(call())

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return result[0]


def fip(index: int) -> str:
    return str(EXTERNAL.network_address + 256 + index)  # 198.18.1.0 and up


def fixed(index: int) -> str:
    return str(ipaddress.ip_address("10.0.16.0") + index)  # no guest: only the rules count


@dataclasses.dataclass
class World:
    host: str
    internet: str
    guest: str
    router: RouterPlumbing


@contextmanager
def world() -> Iterator[World]:
    run = uuid.uuid4().hex[:6]
    host, internet, guest = (f"{PREFIX}{run}{kind}" for kind in "hig")
    bridge, external = names.bridge_name("bench-net", PREFIX), f"{PREFIX}ext"
    router_id = f"bench-router-{run}"
    router = RouterPlumbing(
        router_id=router_id,
        namespace=names.router_namespace(router_id, "bench", PREFIX),
        host_interface=external,
        veth=names.router_external_name(router_id, PREFIX),
        external_cidr=str(EXTERNAL),
        external_gateway=INTERNET_IP,
        snat_ip=SNAT_IP,
        interfaces=(
            RouterInterface(
                network_id="bench-net",
                bridge=bridge,
                veth=names.router_interface_name(router_id, "bench-net", PREFIX),
                mac="0e:00:00:00:00:01",
                address=f"{GATEWAY}/16",
                cidr="10.0.0.0/16",
                zone=zone(1001),
            ),
        ),
    )
    made: list[str] = []
    try:
        for name in (host, internet, guest):
            sh("ip", "netns", "add", name)
            made.append(name)
            sh("ip", "link", "set", "lo", "up", netns=name)
        for name, peer, where, address in (
            (bridge, "gst", guest, f"{GUEST_IP}/16"),
            (external, "net", internet, f"{INTERNET_IP}/16"),
        ):
            sh("ip", "link", "add", name, "type", "bridge", netns=host)
            sh("ip", "link", "set", name, "up", netns=host)
            sh("ip", "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", where,
               netns=host)  # fmt: skip
            sh("ip", "link", "set", peer, "master", name, "up", netns=host)
            sh("ip", "addr", "add", address, "dev", "eth0", netns=where)
            sh("ip", "link", "set", "eth0", "up", netns=where)
        sh("ip", "route", "add", "default", "via", GATEWAY, netns=guest)
        yield World(host, internet, guest, router)
    finally:
        asyncio.run(netlink_router.remove_router(router.namespace))
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False)


class Pinger:
    """Echo requests from inside a namespace, on a raw ICMP socket made there."""

    def __init__(self, netns: str) -> None:
        raw = (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        self.sock = inside(netns, lambda: socket.socket(*raw))
        self.ident = os.getpid() & 0xFFFF
        self.seq = 0

    def _request(self) -> bytes:
        self.seq = (self.seq + 1) & 0xFFFF
        header = struct.pack("!BBHHH", 8, 0, 0, self.ident, self.seq)
        total = sum(struct.unpack("!4H", header))
        total = (total >> 16) + (total & 0xFFFF)
        checksum = ~(total + (total >> 16)) & 0xFFFF
        return struct.pack("!BBHHH", 8, 0, checksum, self.ident, self.seq)

    def first_reply(self, ip: str, every: float = 0.005, within: float = 10.0) -> float:
        """Seconds from now to the first echo reply from `ip` (pinging every `every` s)."""
        start = time.perf_counter()
        while time.perf_counter() - start < within:
            self.sock.sendto(self._request(), (ip, 0))
            sent = time.perf_counter()
            while (left := every - (time.perf_counter() - sent)) > 0:
                if not select.select([self.sock], [], [], left)[0]:
                    break
                packet, (source, _) = self.sock.recvfrom(256)
                icmp = packet[(packet[0] & 0x0F) * 4 :]
                if source == ip and icmp[0] == 0 and icmp[4:6] == struct.pack("!H", self.ident):
                    return time.perf_counter() - start
        raise SystemExit(f"{ip} did not answer within {within} s")

    def close(self) -> None:
        self.sock.close()


def with_fips(router: RouterPlumbing, nats: tuple[FloatingNat, ...]) -> RouterPlumbing:
    return dataclasses.replace(router, floating=nats)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def by_hand(router: RouterPlumbing, nat: FloatingNat, add: bool) -> None:
    """What the driver's change amounts to, typed by an operator: the address, the elements."""
    ext, table, verb = names.veth_peer(router.veth), nft_nat.TABLE, "add" if add else "delete"
    sh("ip", "-n", router.namespace, "addr", "add" if add else "del", f"{nat.floating_ip}/32",
       "dev", ext)  # fmt: skip
    floating, fixed_ip = nat.floating_ip, nat.fixed_ip
    elements = (
        (f"to_fixed {{ {floating} : {fixed_ip} }}", f"to_fixed {{ {floating} }}"),
        (f"to_floating {{ {fixed_ip} : {floating} }}", f"to_floating {{ {fixed_ip} }}"),
        (f"floated {{ {fixed_ip} }}", f"floated {{ {fixed_ip} }}"),
    )
    script = "".join(f"{verb} element ip {table} {a if add else d}\n" for a, d in elements)
    sh("nft", "-f", "-", netns=router.namespace, stdin=script)


async def first_replies(w: World, count: int) -> tuple[list[float], list[float]]:
    """(associate → first reply through the driver, the same by hand), `count` each."""
    pinger = Pinger(w.internet)
    router = w.router
    await netlink_router.ensure_router(router, None, w.host)
    driver, manual = [], []
    try:
        for i in range(count):
            nat = FloatingNat(fip(2 * i), GUEST_IP)
            began = time.perf_counter()
            await netlink_router.ensure_router(with_fips(router, (nat,)), router, w.host)
            driver.append(time.perf_counter() - began + pinger.first_reply(nat.floating_ip))
            await netlink_router.ensure_router(router, with_fips(router, (nat,)), w.host)

            nat = FloatingNat(fip(2 * i + 1), GUEST_IP)
            began = time.perf_counter()
            by_hand(router, nat, add=True)
            manual.append(time.perf_counter() - began + pinger.first_reply(nat.floating_ip))
            by_hand(router, nat, add=False)
    finally:
        pinger.close()
        await netlink_router.settle()
    return driver, manual


def rules(namespace: str) -> int:
    """The rules of the router's NAT table (not its maps' and sets' elements)."""
    listing = sh("nft", "-a", "list", "table", "ip", nft_nat.TABLE, netns=namespace)
    heads = ("table", "chain", "map", "set", "type")
    return sum(
        1
        for line in listing.splitlines()
        if "# handle" in line and not line.strip().startswith(heads)
    )


def nft_timed(namespace: str, script: str) -> float:
    began = time.perf_counter()
    sh("nft", "-f", "-", netns=namespace, stdin=script)
    return time.perf_counter() - began


@dataclasses.dataclass(frozen=True)
class Mark:
    """The figures at the k-th floating IP."""

    ensure: float
    """Median seconds of `ensure_router` adding each of the 10 floating IPs up to the k-th."""
    change_lines: int
    change: float
    """Seconds of the k-th's nftables change alone (its lines, applied again by hand)."""
    reload: float
    """Seconds of a whole-table reload at k floating IPs."""
    rules: int


async def growth(w: World, total: int) -> dict[int, Mark]:
    """k -> its `Mark`, at k = 10, 100, 1,000, ... and `total`."""
    router = w.router
    await netlink_router.ensure_router(router, None, w.host)
    marks = {k for k in (10, 100, 1000, 10_000) if k <= total} | {total}
    seen: dict[int, Mark] = {}
    took: list[float] = []
    nats: tuple[FloatingNat, ...] = ()
    previous = router
    for k in range(1, total + 1):
        nats += (FloatingNat(fip(k), fixed(k)),)
        wanted = with_fips(router, nats)
        began = time.perf_counter()
        await netlink_router.ensure_router(wanted, previous, w.host)
        took.append(time.perf_counter() - began)
        if k in marks:
            ns, change = router.namespace, nft_nat.render_changes(previous, wanted)
            nft_timed(ns, nft_nat.render_changes(wanted, previous))  # undone, to redo by hand
            seen[k] = Mark(
                ensure=statistics.median(took[-10:]),
                change_lines=len(change.splitlines()),
                change=nft_timed(ns, change),
                reload=nft_timed(ns, nft_nat.render(wanted)),
                rules=rules(ns),
            )
        previous = wanted
    await netlink_router.settle()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--associations", type=int, default=50)
    parser.add_argument("--fips", type=int, default=1000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it makes namespaces, bridges and nftables tables")
    # The driver's info lines (a flow forgotten per dissociation) would bury the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with world() as w:
        driver, manual = asyncio.run(first_replies(w, args.associations))
    print(f"associations: {args.associations}, one router, external bridge in a host namespace")
    for label, values in (("driver (ensure_router)", driver), ("by hand (ip + nft)", manual)):
        p50, p99 = percentile(values, 0.5) * 1000, percentile(values, 0.99) * 1000
        print(f"associate→first reply, {label}: p50 {p50:.1f} ms  p99 {p99:.1f} ms")
    with world() as w:
        seen = asyncio.run(growth(w, args.fips))
    print(f"\n{'k-th floating IP':>16}  {'ensure_router':>13}  {'its nft change':>22}  "
          f"{'whole-table reload':>18}  {'rules':>5}")  # fmt: skip
    for k, m in sorted(seen.items()):
        print(f"{k:>16,}  {m.ensure * 1000:>10.1f} ms  {m.change_lines:>3} lines "
              f"{m.change * 1000:>9.1f} ms  {m.reload * 1000:>15.1f} ms  {m.rules:>5}")  # fmt: skip
    first, last = seen[min(seen)], seen[args.fips]
    print(f"{args.fips:,}th association vs 1st: {last.ensure / first.ensure:.2f}x "
          f"({last.ensure * 1000:.1f} ms vs {first.ensure * 1000:.1f} ms, medians of 10); "
          f"its nft change {last.change * 1000:.1f} ms, "
          f"whole-table reload at {args.fips:,}: {last.reload * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
