"""A router made real (`core.l3`): its namespace, its legs (veths on the networks' bridges and
on the external network's host interface), addresses, routes, NAT table (`core.nft_nat`),
and a gratuitous ARP for each address it starts answering.

Used by `NetlinkDriver`. Every call is idempotent and converges: what the namespace has that
the plumbing does not want (legs, external addresses, NAT elements) is removed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Callable

import structlog
from pyroute2 import Conntrack
from pyroute2.netns import setns

from virga_network.agent.core import names, nft_nat
from virga_network.agent.core.plumbing import RouterPlumbing
from virga_network.agent.drivers import netlink_dvr, netlink_snat
from virga_network.agent.drivers.base import DriverError
from virga_network.agent.drivers.netlink_edge import NETNS_DIR, _drop_stale, _ip

log = structlog.get_logger(__name__)
ETH_P_ARP = 0x0806
GARP_INTERVAL = 0.3
GARP_REPEATS = 4
"""Gratuitous ARPs for one address after the first, GARP_INTERVAL seconds apart: a neighbour
whose entry changed less than its locktime ago (1 s by default; a guest's own traffic through
the old host refreshes it) ignores them until then."""
_PENDING: set[asyncio.Task[None]] = set()


async def _run(args: list[str], script: str | None = None) -> str:
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise DriverError(f"{args[0]} is not installed") from None
    out, err = await process.communicate(None if script is None else script.encode())
    if process.returncode != 0:
        raise DriverError(f"{' '.join(args[:6])} failed: {err.decode().strip()}")
    return out.decode()


async def _links(where: list[str]) -> dict[str, dict[str, object]]:
    listing = json.loads(await _run(["ip", *where, "-j", "-d", "link", "show"]) or "[]")
    return {link["ifname"]: link for link in listing}


def _host(host_netns: str | None) -> list[str]:
    return ["-n", host_netns] if host_netns is not None else []


async def _external_leg(router: RouterPlumbing, host_netns: str | None, inside: set[str]) -> None:
    """Plug the namespace into the external network: a veth on the host interface if it is a
    bridge (devstack's br-ex), else a macvlan of it."""
    ns, ext = router.namespace, names.veth_peer(router.veth)
    host = await _links(_host(host_netns))
    interface = host.get(router.host_interface)
    if interface is None:
        raise DriverError(f"host interface {router.host_interface} does not exist")
    info = interface.get("linkinfo")
    bridge = isinstance(info, dict) and info.get("info_kind") == "bridge"
    if ext not in inside:
        if bridge:
            if router.veth in host:
                await _ip(["link", "del", router.veth], host_netns)  # its peer is lost
            await _ip(
                ["link", "add", router.veth, "type", "veth", "peer", "name", ext, "netns", ns],
                host_netns,
            )
        else:
            await _ip(
                ["link", "add", "link", router.host_interface, "name", ext, "netns", ns,
                 "type", "macvlan", "mode", "bridge"],
                host_netns,
            )  # fmt: skip
    if bridge:
        await _ip(["link", "set", router.veth, "addrgenmode", "none"], host_netns)
        await _ip(["link", "set", router.veth, "master", router.host_interface, "up"], host_netns)


async def _interface_legs(
    router: RouterPlumbing, host_netns: str | None, inside: set[str]
) -> list[str]:
    """Make each leg on a network's bridge; the namespace's lines that configure them."""
    lines: list[str] = []
    host = await _links(_host(host_netns))
    for leg in router.interfaces:
        for veth, mac in netlink_snat.bridge_ends(leg):
            peer = names.veth_peer(veth)
            if peer not in inside:
                if veth in host:
                    await _ip(["link", "del", veth], host_netns)  # its peer is lost
                await _ip(
                    ["link", "add", veth, "type", "veth", "peer", "name", peer, "netns",
                     router.namespace],
                    host_netns,
                )  # fmt: skip
            await _ip(["link", "set", veth, "addrgenmode", "none"], host_netns)
            await _ip(["link", "set", veth, "master", leg.bridge, "up"], host_netns)
            # The router's MACs are on this host's legs only: never looked for across the
            # tunnel.
            await _run(["bridge", *_host(host_netns), "fdb", "replace", mac, "dev", veth,
                        "master", "static"])  # fmt: skip
        peer = names.veth_peer(leg.veth)
        lines.append(f"link set {peer} address {leg.mac} addrgenmode none up")
        if leg.link_local:
            # The same addresses on every host (the tunnel keeps them apart): no duplicate
            # detection, usable at once; the link-local one is the guests' default router.
            lines += [
                f"addr replace {leg.link_local}/64 dev {peer} nodad",
                f"addr replace {leg.address} dev {peer} nodad",
            ]
        else:
            lines.append(f"addr replace {leg.address} dev {peer}")
        lines += netlink_snat.lines(leg)
    return lines


async def _external_addresses(router: RouterPlumbing) -> tuple[list[str], list[str]]:
    """The namespace's lines that make the external leg's addresses exactly the plumbing's,
    and the addresses it starts answering now."""
    ext = names.veth_peer(router.veth)
    listing = json.loads(
        await _run(["ip", "-n", router.namespace, "-j", "addr", "show", "dev", ext]) or "[]"
    )
    have = {
        f"{a['local']}/{a['prefixlen']}"
        for link in listing
        for a in link.get("addr_info", [])
        if a.get("family") == "inet"
    }
    wanted = set(router.external_addresses())
    lines = [f"addr del {a} dev {ext}" for a in sorted(have - wanted)]
    lines += [f"addr replace {a} dev {ext}" for a in sorted(wanted - have)]
    return lines, sorted(a.split("/")[0] for a in wanted - have)


async def ensure_router(
    router: RouterPlumbing, previous: RouterPlumbing | None, host_netns: str | None
) -> None:
    """Make the router exist as `router` says; `previous`: what this process last made of it
    (None: not known, the NAT table is made whole)."""
    ns, ext = router.namespace, names.veth_peer(router.veth)
    path = NETNS_DIR / ns
    _drop_stale(path)
    if not path.exists():
        await _ip(["netns", "add", ns], None)
    await _run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1"])  # fmt: skip
    inside = set(await _links(["-n", ns]))
    await _external_leg(router, host_netns, inside)
    lines = ["link set lo up", f"link set {ext} addrgenmode none up"]
    lines += await _interface_legs(router, host_netns, inside)
    wanted_legs = {
        names.veth_peer(veth)
        for leg in router.interfaces
        for veth, _ in netlink_snat.bridge_ends(leg)
    }
    legs = {name for name in inside if _is_leg(name, router.veth[: -names.DIGITS - 1])}
    lines += [f"link del {name}" for name in sorted(legs - wanted_legs)]
    addresses, announce = await _external_addresses(router)
    lines += addresses
    # The ports on other hosts: known, never asked for across the tunnel (`core.dvr`).
    known = await _run(["ip", "-n", ns, "-j", "neigh", "show", "nud", "permanent"])
    lines += netlink_dvr.stale(known, router) + netlink_dvr.lines(router)
    lines += [
        f"route replace {router.external_cidr} dev {ext}",
        f"route replace default via {router.external_gateway} dev {ext}",
    ]
    await _ip(["-n", ns, "-batch", "-"], None, "\n".join(lines) + "\n")
    settings = netlink_snat.sysctls(router)
    if settings:
        await _run(["ip", "netns", "exec", ns, "sysctl", "-qw", *settings])
    # The NAT table (its marks) before the rules that route by them.
    await _nat(router, previous)
    listing = await _run(["ip", "-n", ns, "-j", "rule", "show"])
    rules = netlink_snat.rule_changes(listing, netlink_snat.wanted_rules(router))
    if rules:
        await _ip(["-n", ns, "-batch", "-"], None, "\n".join(rules) + "\n")
    if previous is None or (previous.floating, previous.snat_ip) != (
        router.floating,
        router.snat_ip,
    ):
        await _in_namespace(ns, lambda: _forget_flows(router))
    if announce:
        await _announce(ns, ext, announce)


def _is_leg(name: str, prefix: str) -> bool:
    """Whether `name` is the namespace's end of a router's leg on a network."""
    head = f"{prefix}i"
    return (
        name.startswith(head) and name.endswith("p") and len(name) == len(head) + names.DIGITS + 1
    )


async def _nat(router: RouterPlumbing, previous: RouterPlumbing | None) -> None:
    nft = ["ip", "netns", "exec", router.namespace, "nft", "-f", "-"]
    if previous is not None:
        script = nft_nat.render_changes(previous, router)
        try:
            if script:
                await _run(nft, script)
            return
        except DriverError as exc:
            log.warning("nat_changes_refused", namespace=router.namespace, reason=str(exc))
    await _run(nft, nft_nat.render(router))


def _forget_flows(router: RouterPlumbing) -> None:
    """Delete the namespace's NAT flows that its NAT no longer makes (a floating IP moved or
    gone, the SNAT address elsewhere): an established connection does not outlive the
    association it was made under."""
    to_fixed = {f.floating_ip: f.fixed_ip for f in router.floating}
    to_floating = {f.fixed_ip: f.floating_ip for f in router.floating}
    ct = Conntrack()
    try:
        for entry in list(ct.dump_entries()):
            orig, reply = entry.tuple_orig, entry.tuple_reply
            if (orig.saddr, orig.daddr) == (reply.daddr, reply.saddr):
                continue  # not translated
            current = (
                to_fixed.get(orig.daddr) == reply.saddr
                or to_floating.get(orig.saddr) == reply.daddr
                or (router.snat_ip == reply.daddr and orig.saddr not in to_floating)
            )
            if not current:
                ct.delete(entry)
                log.info("nat_flow_forgotten", namespace=router.namespace, src=orig.saddr,
                         dst=orig.daddr)  # fmt: skip
    finally:
        ct.close()


async def _in_namespace(namespace: str, call: Callable[[], None]) -> None:
    """Run `call` on a short-lived thread inside `namespace` (setns moves only that thread)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            setns(namespace, flags=0)
            call()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"in-{namespace}", daemon=True)
    thread.start()
    await asyncio.to_thread(thread.join)
    if failure:
        raise DriverError(f"in {namespace}: {failure[0]}")


def _garp(ip: str, mac: bytes, op: int) -> bytes:
    """A gratuitous ARP for `ip` from `mac`: a request (op 1) or a reply (op 2) naming itself
    as the target, so that neighbours re-point their entries."""
    addr = socket.inet_aton(ip)
    target = mac if op == 2 else b"\x00" * 6
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + mac + addr + target + addr
    return b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP) + arp


async def _announce(
    namespace: str, ifname: str, ips: list[str], repeats: int = GARP_REPEATS
) -> None:
    """Send a gratuitous ARP for each of `ips` out of `ifname`, from inside `namespace`: the
    external network's neighbours re-point the address at once (it may have been another
    host's a moment ago)."""

    def send() -> None:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
            sock.bind((ifname, ETH_P_ARP))
            mac = sock.getsockname()[4]
            for ip in ips:
                # Both forms: some neighbours take only one of them as gratuitous.
                sock.send(_garp(ip, mac, 1))
                sock.send(_garp(ip, mac, 2))

    try:
        await _in_namespace(namespace, send)
    except DriverError as exc:
        log.warning("gratuitous_arp_failed", namespace=namespace, reason=str(exc))
        return
    if repeats:
        # A neighbour updated less than its locktime ago ignores the first; as Neutron does,
        # say it again (without holding up the convergence).
        task = asyncio.get_running_loop().create_task(_again(namespace, ifname, ips, repeats))
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)


async def _again(namespace: str, ifname: str, ips: list[str], repeats: int) -> None:
    await asyncio.sleep(GARP_INTERVAL)
    await _announce(namespace, ifname, ips, repeats - 1)


async def settle() -> None:
    """Stop the gratuitous ARPs still to be repeated (the driver is closing)."""
    for task in list(_PENDING):
        task.cancel()
    await asyncio.gather(*_PENDING, return_exceptions=True)


def routers(prefix: str, host: str) -> frozenset[str]:
    """The namespaces of `host`'s routers that exist."""
    if not NETNS_DIR.exists():
        return frozenset()
    found = set()
    for path in NETNS_DIR.glob(f"{prefix}r*-{host}"):
        name = path.name.removesuffix(f"-{host}")
        if len(name) == len(prefix) + 1 + names.DIGITS:
            found.add(path.name)
    return frozenset(found)


async def remove_router(namespace: str) -> None:
    """Remove the router's namespace: its legs, addresses, NAT table and conntrack go with it."""
    path = NETNS_DIR / namespace
    _drop_stale(path)
    if path.exists():
        # Its legs first: a namespace is destroyed some time after `netns del`, and with it
        # the host ends of its veths; deleted now, they are gone when this returns.
        legs = [name for name in await _links(["-n", namespace]) if name != "lo"]
        if legs:
            script = "".join(f"link del {name}\n" for name in legs)
            await _ip(["-n", namespace, "-batch", "-"], None, script)
        await _ip(["netns", "del", namespace], None)
