"""A network's edge made real (`core.edge`): its namespace, veth, address, routes, neighbours
(`ip`), and the sockets the agent serves DHCP and metadata on, opened inside it.

Used by `NetlinkDriver` (plumbing) and the agent's composition root (sockets).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
import struct
import threading
from pathlib import Path

from pyroute2.netns import setns

from virga_network.agent.core import names
from virga_network.agent.core.dhcp import SERVER_PORT
from virga_network.agent.core.dhcpv6 import ALL_DHCP, EDGE_ADDRESS6, SERVER_PORT6
from virga_network.agent.core.edge import EDGE_ADDRESS
from virga_network.agent.core.plumbing import EdgePlumbing
from virga_network.agent.drivers.base import DriverError, EdgeSockets

NETNS_DIR = Path("/run/netns")
METADATA_PORT = 80
IPV6_FREEBIND = 78
"""linux/in6.h (Python's socket module does not name it)."""


async def _ip(args: list[str], host_netns: str | None, script: str | None = None) -> None:
    where = ["-n", host_netns] if host_netns is not None else []
    try:
        process = await asyncio.create_subprocess_exec(
            "ip", *where, *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except FileNotFoundError:
        raise DriverError("ip is not installed (Debian package iproute2)") from None
    _, err = await process.communicate(None if script is None else script.encode())
    if process.returncode != 0:
        raise DriverError(f"ip {' '.join(args)} failed: {err.decode().strip()}")


def _drop_stale(path: Path) -> None:
    """Remove `path` if it is a namespace's file but no namespace is mounted on it: left by
    an agent that ran in a mount namespace of its own (`ip netns exec`), whose namespace
    ended with it."""
    if path.exists() and not os.path.ismount(path):
        path.unlink()


async def ensure_edge(edge: EdgePlumbing, bridge: str, host_netns: str | None) -> bool:
    """Make the edge exist as `edge` says, its veth on `bridge`; True if the host end was
    made now (the caller then disables IPv6 on it)."""
    made = False
    path = NETNS_DIR / edge.namespace
    _drop_stale(path)
    if not path.exists():
        await _ip(["netns", "add", edge.namespace], None)
    peer = names.veth_peer(edge.veth)
    try:
        await _ip(["link", "show", "dev", edge.veth], host_netns)
    except DriverError:
        await _ip(
            ["link", "add", edge.veth, "type", "veth", "peer", "name", peer,
             "netns", edge.namespace],
            host_netns,
        )  # fmt: skip
        made = True
    await _ip(["link", "set", edge.veth, "master", bridge, "up"], host_netns)
    if ipaddress.ip_network(edge.cidr).version == 6:
        # A fixed link-local address, usable at once (no duplicate detection: it is ours).
        own = [f"addr replace {EDGE_ADDRESS6}/64 dev {peer} nodad",
               f"route replace {edge.cidr} dev {peer}"]  # fmt: skip
    else:
        own = [f"addr replace {EDGE_ADDRESS}/32 dev {peer}",
               f"route replace {edge.cidr} dev {peer} src {EDGE_ADDRESS}"]  # fmt: skip
    lines = [
        "link set lo up",
        f"link set {peer} addrgenmode none",  # no address of its own making: only ours
        f"link set {peer} up",
        *own,
        f"neigh flush dev {peer} nud permanent",
        *(
            f"neigh replace {ip} lladdr {mac} dev {peer} nud permanent"
            for ip, mac in edge.neighbours
        ),
    ]
    await _ip(["-n", edge.namespace, "-batch", "-"], None, "\n".join(lines) + "\n")
    return made


def edges(prefix: str, host: str) -> frozenset[str]:
    """The edges of `host` whose namespace exists, by their veth's name."""
    found = set()
    for path in NETNS_DIR.glob(f"{prefix}e*-{host}") if NETNS_DIR.exists() else ():
        veth = path.name.removesuffix(f"-{host}")
        if names.kind_of(veth, prefix) == "e" and os.path.ismount(path):
            found.add(veth)
    return frozenset(found)


async def remove_edge(namespace: str) -> None:
    """Remove the edge's namespace (its veth goes with it); absent is done."""
    if (NETNS_DIR / namespace).exists():
        await _ip(["netns", "del", namespace], None)


def _v4(peer: str) -> EdgeSockets:
    http = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    http.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    http.bind((EDGE_ADDRESS, METADATA_PORT))
    http.listen(128)
    dhcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    # Bound to the edge's end: its broadcasts leave there, without a route.
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, peer.encode())
    dhcp.bind(("0.0.0.0", SERVER_PORT))
    return EdgeSockets(dhcp=dhcp, http=http, ifindex=socket.if_nametoindex(peer))


def _v6(peer: str) -> EdgeSockets:
    ifindex = socket.if_nametoindex(peer)
    dhcp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    dhcp.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, peer.encode())
    dhcp.bind(("::", SERVER_PORT6))
    _join(dhcp, ALL_DHCP, ifindex)
    icmp6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    icmp6.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, peer.encode())
    icmp6.bind((EDGE_ADDRESS6, 0, 0, ifindex))
    for option in (socket.IPV6_MULTICAST_HOPS, socket.IPV6_UNICAST_HOPS):
        icmp6.setsockopt(socket.IPPROTO_IPV6, option, 255)  # neighbour discovery's rule
    icmp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    # Advertisements go out in the name of the router attached to the network (from its
    # leg's link-local address, which is not the edge's: `edge_ipv6.RouterAdvertiser`).
    icmp6.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
    _join(icmp6, "ff02::2", ifindex)  # all routers: where solicitations go
    return EdgeSockets(dhcp=dhcp, icmp6=icmp6, ifindex=ifindex)


def _join(sock: socket.socket, group: str, ifindex: int) -> None:
    request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)


async def edge_sockets(edge: EdgePlumbing) -> EdgeSockets:
    """The edge's sockets (`EdgeSockets`), made inside its namespace (a socket keeps the
    namespace it was made in; only the short-lived thread that makes them enters it)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[EdgeSockets] = loop.create_future()
    peer = names.veth_peer(edge.veth)

    def make() -> None:
        try:
            setns(edge.namespace, flags=0)
            six = ipaddress.ip_network(edge.cidr).version == 6
            made = _v6(peer) if six else _v4(peer)
            for sock in (made.dhcp, made.http, made.icmp6):
                if sock is not None:
                    sock.setblocking(False)
            loop.call_soon_threadsafe(done.set_result, made)
        except BaseException as exc:
            error = DriverError(f"edge sockets in {edge.namespace}: {exc}")
            loop.call_soon_threadsafe(done.set_exception, error)

    thread = threading.Thread(target=make, name=f"edge-{edge.namespace}", daemon=True)
    thread.start()
    try:
        return await done
    finally:
        await asyncio.to_thread(thread.join)
