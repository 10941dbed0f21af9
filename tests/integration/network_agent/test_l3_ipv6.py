"""A router on IPv6 networks, for real: one host namespace plumbed by the netlink driver from
a state folded from the log's events, its edges served (router advertisements, DHCPv6) by
the agent's `EdgeServer`, guests in namespaces of their own.

One router has legs on two IPv6 networks and two IPv4 networks. A guest takes its IPv6
default route from the edge's advertisement (the router's link-local address, lifetime > 0)
only while the router is attached to its network, pings its gateway, and reaches the other
network's guest through the router (v6 to v6, v4 to v4) as its security groups allow. A
guest cannot pass itself off as the gateway, and removal leaves nothing behind.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import frames
from tests.support.l3 import Log, eventually, eventually_async, inside
from tests.support.netns import links, namespaces, pings, plug_guest, sh, unique

from virga_events.catalog.l3 import (
    ExternalNetworkCreated,
    RouterCreated,
    RouterDeleted,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    SecurityGroupCreated,
    SecurityGroupRule,
)
from virga_network.agent.core import names
from virga_network.agent.core.edge import EdgeSettings
from virga_network.agent.core.l3 import router_mac
from virga_network.agent.core.nft_text import link_local
from virga_network.agent.core.plan import host_plan
from virga_network.agent.drivers import netlink_edge
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.edge import EdgeServer
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

PREFIX = "vl6"
VTEP = "192.0.2.1"
HOST = unique("s")
FRAMES = str(Path(frames.__file__))
NET_A, NET_B, NET_C, NET_D = (str(uuid.uuid4()) for _ in range(4))
NETWORKS = {
    NET_A: ("fd00:a::/64", "fd00:a::1", 3201),
    NET_B: ("fd00:b::/64", "fd00:b::1", 3202),
    NET_C: ("10.0.1.0/24", "10.0.1.1", 3203),
    NET_D: ("10.0.2.0/24", "10.0.2.1", 3204),
}
EXT, ROUTER, TENANT = "ext-6", "router-6", "tenant-a"
ROUTER_LL_A = link_local(router_mac(ROUTER, NET_A))


def _rules(tcp: int | None) -> tuple[SecurityGroupRule, ...]:
    rules = [
        SecurityGroupRule(direction="egress", ethertype="IPv4"),
        SecurityGroupRule(direction="egress", ethertype="IPv6"),
        SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="icmp"),
        SecurityGroupRule(direction="ingress", ethertype="IPv6", protocol="icmpv6"),
    ]
    if tcp is not None:
        rules.append(
            SecurityGroupRule(direction="ingress", ethertype="IPv6", protocol="tcp", port_min=tcp)
        )
    return tuple(rules)


@dataclass(frozen=True)
class Guest:
    name: str
    network: str
    ip: str
    mac: str
    group: str

    @property
    def port_id(self) -> str:
        return f"port-{self.name}"

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


GUESTS = {
    g.name: g
    for g in (
        Guest("a1", NET_A, "fd00:a::11", "02:00:0a:00:06:11", "web"),  # TCP 80 open
        Guest("a2", NET_A, "fd00:a::12", "02:00:0a:00:06:12", "closed"),
        Guest("b1", NET_B, "fd00:b::11", "02:00:0b:00:06:11", "closed"),
        Guest("c1", NET_C, "10.0.1.11", "02:00:0c:00:06:11", "closed"),
        Guest("d1", NET_D, "10.0.2.11", "02:00:0d:00:06:11", "closed"),
    )
}


@dataclass
class World:
    log: Log
    effects: AgentEffects
    ns: dict[str, str]

    async def converge(self) -> None:
        plan = host_plan(self.log.state, VTEP, PREFIX, edges=True)
        await self.effects.converge(Converge(plan))

    def write_interface(self, network: str, attached: bool) -> None:
        if attached:
            gateway = NETWORKS[network][1]
            self.log.write(RouterInterfaceAdded(network_id=network, gateway_ip=gateway), ROUTER,
                           TENANT)  # fmt: skip
        else:
            self.log.write(RouterInterfaceRemoved(network_id=network), ROUTER, TENANT)


def _events(log: Log) -> None:
    log.write(
        ExternalNetworkCreated(name="public", cidr="203.0.113.0/24", gateway_ip="203.0.113.1",
                               allocation_pools=(), host_interface="vl6brex"),
        EXT, None,
    )  # fmt: skip
    for net, (cidr, gateway, vni) in NETWORKS.items():
        created = NetworkCreated(name=net[:8], cidr=cidr, vni=vni, gateway_ip=gateway,
                                 allocation_pools=())  # fmt: skip
        log.write(created, net, TENANT)
    log.write(SecurityGroupCreated(name="web", rules=_rules(80)), "web", TENANT)
    log.write(SecurityGroupCreated(name="closed", rules=_rules(None)), "closed", TENANT)
    for g in GUESTS.values():
        allocated = PortAllocated(network_id=g.network, mac=g.mac, ips=(g.ip,),
                                  security_groups=(g.group,))  # fmt: skip
        log.write(allocated, g.port_id, TENANT)
        log.write(PortHostAssigned(host=HOST), g.port_id, TENANT)
    router = RouterCreated(name="r", external_network_id=EXT, external_ip="203.0.113.16")
    log.write(router, ROUTER, TENANT)
    for net, (_, gateway, _) in NETWORKS.items():
        log.write(RouterInterfaceAdded(network_id=net, gateway_ip=gateway), ROUTER, TENANT)


def _ours() -> set[str]:
    """This test's router and edge namespaces."""
    return {
        name
        for name in sh("ip", "netns", "list").stdout.split()
        if name.startswith((f"{PREFIX}r", f"{PREFIX}e")) and name.endswith(f"-{HOST}")
    }


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    wanted = {"host": unique("vl6h")} | {name: unique(f"vl6{name}") for name in GUESTS}
    with namespaces(list(wanted.values())):
        host = wanted["host"]
        sh("ip", "link", "add", "vl6under", "type", "veth", "peer", "vl6under1", netns=host)
        sh("ip", "addr", "add", f"{VTEP}/24", "dev", "vl6under", netns=host)
        sh("ip", "link", "set", "vl6under", "up", netns=host)
        sh("ip", "link", "add", "vl6brex", "type", "bridge", netns=host)
        sh("ip", "link", "set", "vl6brex", "up", netns=host)
        try:
            yield wanted
        finally:
            for name in _ours():
                sh("ip", "netns", "del", name, check=False)


@pytest.fixture
async def world(ns: dict[str, str]) -> AsyncIterator[World]:
    driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns["host"], host=HOST)
    await driver.prepare()
    log = Log(HOST)
    _events(log)
    server = EdgeServer(lambda: log.state, EdgeSettings(), netlink_edge.edge_sockets)
    world = World(log, AgentEffects(driver, edges=server.serve), ns)
    try:
        await world.converge()
        for g in GUESTS.values():
            plug_guest(ns["host"], names.veth_peer(g.tap), ns[g.name], g.mac, (g.ip,))
            if ":" not in g.ip:
                sh("ip", "route", "add", "default", "via", NETWORKS[g.network][1],
                   netns=ns[g.name])  # fmt: skip
        yield world
    finally:
        await server.close()
        await driver.close()


def _default_router(guest_ns: str) -> str:
    """The guest's IPv6 default route, as `ip` shows it ("" if none)."""
    return sh("ip", "-6", "route", "show", "default", netns=guest_ns).stdout.strip()


def _neighbour_mac(guest_ns: str, ip: str) -> str:
    out = sh("ip", "-6", "neigh", "show", ip, "dev", "eth0", netns=guest_ns).stdout
    return out.split("lladdr ")[1].split()[0] if "lladdr " in out else ""


def _listener6(netns: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", port))
        sock.listen(16)
        return sock

    return inside(netns, make)


def _connects6(netns: str, ip: str, port: int, timeout: float = 1.0) -> bool:
    def connect() -> bool:
        try:
            socket.create_connection((ip, port), timeout=timeout).close()
            return True
        except OSError:
            return False

    return inside(netns, connect)


async def test_an_ipv6_network_behind_a_router_is_routed_and_advertised_while_attached(
    world: World,
) -> None:
    ns = world.ns
    router_ns = names.router_namespace(ROUTER, HOST, PREFIX)
    # The edge advertises the router (its link-local address on the network) as default.
    assert await eventually_async(lambda: f"via {ROUTER_LL_A} " in _default_router(ns["a1"]), 20)
    assert "proto ra" in _default_router(ns["a1"])
    assert await eventually_async(lambda: "via fe80::" in _default_router(ns["b1"]), 20)
    # The gateway answers neighbour discovery and ping6, with the router's MAC.
    assert eventually(lambda: pings(ns["a1"], "fd00:a::1"))
    assert _neighbour_mac(ns["a1"], "fd00:a::1") == router_mac(ROUTER, NET_A)
    assert eventually(lambda: pings(ns["b1"], "fd00:b::1"))
    # East-west through the router: v6 to v6 (by the advertised route), v4 to v4.
    assert eventually(lambda: pings(ns["a1"], "fd00:b::11"))
    assert eventually(lambda: pings(ns["b1"], "fd00:a::11"))
    assert eventually(lambda: pings(ns["c1"], "10.0.2.11"))
    assert eventually(lambda: pings(ns["d1"], "10.0.1.11"))
    # Security groups keep deciding: a1's opens TCP 80, b1's does not.
    servers = [_listener6(ns["a1"], 80), _listener6(ns["b1"], 80)]
    try:
        assert _connects6(ns["b1"], "fd00:a::11", 80)
        assert not _connects6(ns["a1"], "fd00:b::11", 80, timeout=0.5)
    finally:
        for server in servers:
            server.close()

    # A guest cannot pass itself off as the gateway: a2's advertisements of the gateway's
    # addresses (and its router advertisement) never reach a1.
    a2 = GUESTS["a2"]
    forged = [
        frames.neighbour_advert(a2.mac, link_local(a2.mac), "fd00:a::1"),
        frames.neighbour_advert(a2.mac, link_local(a2.mac), ROUTER_LL_A),
        frames.router_advert(a2.mac, link_local(a2.mac)),
    ]
    sh(sys.executable, FRAMES, "send", "eth0", *(f.hex() for f in forged), netns=ns["a2"])
    assert pings(ns["a1"], "fd00:a::1")
    assert _neighbour_mac(ns["a1"], "fd00:a::1") == router_mac(ROUTER, NET_A)
    assert link_local(a2.mac) not in _default_router(ns["a1"])

    # Detached from NET_A: the edge withdraws the default route at once, the gateway goes.
    world.write_interface(NET_A, attached=False)
    await world.converge()
    assert await eventually_async(lambda: _default_router(ns["a1"]) == "", 5)
    assert not pings(ns["a1"], "fd00:a::1", wait=0.5)
    assert not pings(ns["b1"], "fd00:a::11", wait=0.5)
    assert "fd00:a::1/" not in sh("ip", "-6", "addr", "show", netns=router_ns).stdout
    assert pings(ns["b1"], "fd00:b::1")  # the router's other networks go on
    # Attached again: advertised again without waiting for the next period.
    world.write_interface(NET_A, attached=True)
    await world.converge()
    assert await eventually_async(lambda: f"via {ROUTER_LL_A} " in _default_router(ns["a1"]), 5)
    assert eventually(lambda: pings(ns["a1"], "fd00:b::11"))

    # The router gone: its namespace, legs and default routes with it.
    for net in NETWORKS:
        world.write_interface(net, attached=False)
    world.log.write(RouterDeleted(external_network_id=EXT), ROUTER, TENANT)
    await world.converge()
    assert {n for n in _ours() if n.startswith(f"{PREFIX}r")} == set()
    assert {n for n in links(ns["host"]) if n.startswith((f"{PREFIX}i", f"{PREFIX}g"))} == set()
    assert await eventually_async(lambda: _default_router(ns["a1"]) == "", 5)
    assert await eventually_async(lambda: _default_router(ns["b1"]) == "", 5)
    assert not pings(ns["a1"], "fd00:b::11", wait=0.5)
