"""Floating IPs and routers for real: one host namespace plumbed by the netlink driver from a
state folded from the log's events, guests in namespaces of their own, and an "internet"
namespace on the external network (a bridge on the host, as devstack's br-ex).

Two tenants have the same CIDR behind different routers; tenant A's guests g1 and g2 differ
in their security groups (g1: ping and TCP 80 from anywhere; g2: ping and TCP 8080), so what
answers on the floating IP tells which guest it points at.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest
from pyroute2 import Conntrack
from tests.support.l3 import Log, accepted, connects, eventually, inside, listener, source_seen
from tests.support.netns import links, namespaces, pings, plug_guest, sh, unique

from virga_events.catalog.l3 import (
    ExternalNetworkCreated,
    FloatingIpAllocated,
    FloatingIpAssociationAccepted,
    FloatingIpDissociated,
    FloatingIpReleased,
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
from virga_network.agent.core.plan import host_plan
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

PREFIX = "vl3"
VTEP = "192.0.2.1"
HOST = unique("l")
NET_A, NET_B = (str(uuid.uuid4()) for _ in range(2))
EXT, ROUTER_A, ROUTER_B, FIP = "ext-1", "router-a", "router-b", "fip-1"
EXT_GATEWAY, ROUTER_A_IP, ROUTER_B_IP, FLOATING = (
    "203.0.113.1",
    "203.0.113.10",
    "203.0.113.20",
    "203.0.113.100",
)
T = TypeVar("T")


@dataclass(frozen=True)
class Guest:
    name: str
    tenant: str
    network: str
    ip: str
    mac: str
    group: str
    port_id: str

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


def _group(port: int) -> tuple[SecurityGroupRule, ...]:
    return (
        SecurityGroupRule(direction="egress", ethertype="IPv4"),
        SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="icmp"),
        SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="tcp", port_min=port),
    )


GUESTS = {
    g.name: g
    for g in (
        Guest("g1", "tenant-a", NET_A, "10.0.0.11", "02:00:0a:00:00:0b", "web", "port-g1"),
        Guest("g2", "tenant-a", NET_A, "10.0.0.12", "02:00:0a:00:00:0c", "alt", "port-g2"),
        # Tenant B: the same CIDR and g1's address, behind its own router.
        Guest("g3", "tenant-b", NET_B, "10.0.0.11", "02:00:0b:00:00:0b", "b-web", "port-g3"),
    )
}


def translated_flows(netns: str) -> str:
    """The addresses of every conntrack entry in `netns` that NAT rewrote, as text.

    An entry whose reply is not the mirror of its original direction was translated. Entries
    a stray packet opens after a floating IP is gone (a client still retransmitting to it) are
    not translated and would be dropped, so they are not listed.
    """

    def dump() -> str:
        with Conntrack() as ct:
            return " ".join(
                f"{e.tuple_orig.saddr}>{e.tuple_orig.daddr}/{e.tuple_reply.saddr}>"
                f"{e.tuple_reply.daddr}"
                for e in ct.dump_entries()
                if (e.tuple_reply.saddr, e.tuple_reply.daddr)
                != (e.tuple_orig.daddr, e.tuple_orig.saddr)
            )

    return inside(netns, dump)


@dataclass
class World:
    log: Log
    effects: AgentEffects
    driver: NetlinkDriver
    ns: dict[str, str]

    async def converge(self) -> None:
        await self.effects.converge(Converge(host_plan(self.log.state, VTEP, PREFIX)))

    def router_namespaces(self) -> set[str]:
        listed = sh("ip", "netns", "list").stdout.split()
        return {n for n in listed if n.startswith(f"{PREFIX}r") and n.endswith(f"-{HOST}")}


def _events(log: Log) -> None:
    log.write(
        ExternalNetworkCreated(name="public", cidr="203.0.113.0/24", gateway_ip=EXT_GATEWAY,
                               allocation_pools=(), host_interface="vl3brex"),
        EXT, None,
    )  # fmt: skip
    for net, tenant, vni in ((NET_A, "tenant-a", 3001), (NET_B, "tenant-b", 3002)):
        log.write(
            NetworkCreated(name=tenant, cidr="10.0.0.0/24", vni=vni, gateway_ip="10.0.0.1",
                           allocation_pools=()),
            net, tenant,
        )  # fmt: skip
    for group, tenant, port in (("web", "tenant-a", 80), ("alt", "tenant-a", 8080),
                                ("b-web", "tenant-b", 80)):  # fmt: skip
        log.write(SecurityGroupCreated(name=group, rules=_group(port)), group, tenant)
    for g in GUESTS.values():
        allocated = PortAllocated(network_id=g.network, mac=g.mac, ips=(g.ip,),
                                  security_groups=(g.group,))  # fmt: skip
        log.write(allocated, g.port_id, g.tenant)
        log.write(PortHostAssigned(host=HOST), g.port_id, g.tenant)
    for router, tenant, ip, net in ((ROUTER_A, "tenant-a", ROUTER_A_IP, NET_A),
                                    (ROUTER_B, "tenant-b", ROUTER_B_IP, NET_B)):  # fmt: skip
        log.write(RouterCreated(name=router, external_network_id=EXT, external_ip=ip),
                  router, tenant)  # fmt: skip
        log.write(RouterInterfaceAdded(network_id=net, gateway_ip="10.0.0.1"), router, tenant)
    log.write(FloatingIpAllocated(external_network_id=EXT, ip=FLOATING), FIP, "tenant-a")


def _associate(log: Log, guest: Guest) -> None:
    associated = FloatingIpAssociationAccepted(port_id=guest.port_id, network_id=guest.network,
                                      fixed_ip=guest.ip, host=HOST)  # fmt: skip
    log.write(associated, FIP, guest.tenant)


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    wanted = {"host": unique("vl3h"), "internet": unique("vl3i")}
    wanted |= {name: unique(f"vl3{name}") for name in GUESTS}
    with namespaces(list(wanted.values())):
        host = wanted["host"]
        sh("ip", "link", "add", "vl3under", "type", "veth", "peer", "vl3under1", netns=host)
        sh("ip", "addr", "add", f"{VTEP}/24", "dev", "vl3under", netns=host)
        sh("ip", "link", "set", "vl3under", "up", netns=host)
        # The external network: a bridge on the host, the internet's router plugged into it.
        sh("ip", "link", "add", "vl3brex", "type", "bridge", netns=host)
        sh("ip", "link", "set", "vl3brex", "up", netns=host)
        sh("ip", "link", "add", "vl3up", "type", "veth", "peer", "eth0", "netns",
           wanted["internet"], netns=host)  # fmt: skip
        sh("ip", "link", "set", "vl3up", "master", "vl3brex", "up", netns=host)
        sh("ip", "addr", "add", f"{EXT_GATEWAY}/24", "dev", "eth0", netns=wanted["internet"])
        sh("ip", "link", "set", "eth0", "up", netns=wanted["internet"])
        try:
            yield wanted
        finally:
            for name in sh("ip", "netns", "list").stdout.split():
                if name.startswith(f"{PREFIX}r") and name.endswith(f"-{HOST}"):
                    sh("ip", "netns", "del", name, check=False)


@pytest.fixture
async def world(ns: dict[str, str]) -> AsyncIterator[World]:
    driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns["host"], host=HOST)
    await driver.prepare()
    log = Log(HOST)
    _events(log)
    world = World(log, AgentEffects(driver), driver, ns)
    try:
        await world.converge()
        for g in GUESTS.values():
            plug_guest(ns["host"], names.veth_peer(g.tap), ns[g.name], g.mac, (g.ip,))
            sh("ip", "route", "add", "default", "via", "10.0.0.1", netns=ns[g.name])
        yield world
    finally:
        await driver.close()


async def test_floating_ip_nat_snat_reassociation_and_cleanup(world: World) -> None:
    ns = world.ns
    servers = {
        "g1": listener(ns["g1"], 80),
        "g2a": listener(ns["g2"], 80),
        "g2b": listener(ns["g2"], 8080),
        "internet": listener(ns["internet"], 9000),
    }
    flows: list[socket.socket] = []
    try:
        # Each tenant's gateway answers on this host, behind its own router.
        assert world.router_namespaces() == {
            names.router_namespace(r, HOST, PREFIX) for r in (ROUTER_A, ROUTER_B)
        }
        assert eventually(lambda: pings(ns["g1"], "10.0.0.1"))
        assert eventually(lambda: pings(ns["g3"], "10.0.0.1"))
        # No floating IP yet: nothing answers on it.
        assert not pings(ns["internet"], FLOATING)

        _associate(world.log, GUESTS["g1"])
        started = time.monotonic()
        await world.converge()
        assert eventually(lambda: pings(ns["internet"], FLOATING, wait=0.5))
        print(f"associate -> first ping reply: {time.monotonic() - started:.3f} s")
        assert connects(ns["internet"], FLOATING, 80)  # g1's group lets TCP 80 in
        # Hairpin: g2 reaches g1 by its floating IP, through their router.
        assert connects(ns["g2"], FLOATING, 80)
        assert not connects(ns["internet"], FLOATING, 8080, timeout=0.5)  # g1's does not

        # Out through SNAT: the internet sees the floating IP, the routers' addresses (the
        # two tenants' 10.0.0.11 apart), never a fixed address.
        server = servers["internet"]
        assert source_seen(server, ns["g1"], EXT_GATEWAY, 9000) == FLOATING
        assert source_seen(server, ns["g2"], EXT_GATEWAY, 9000) == ROUTER_A_IP
        assert source_seen(server, ns["g3"], EXT_GATEWAY, 9000) == ROUTER_B_IP

        # Routing to a fixed address through a router's address gets nowhere.
        sh("ip", "route", "add", "10.0.0.0/24", "via", ROUTER_A_IP, netns=ns["internet"])
        assert not pings(ns["internet"], "10.0.0.12", wait=0.5)
        assert not connects(ns["internet"], "10.0.0.12", 8080, timeout=0.5)

        # An established connection to g1 through the floating IP...
        client = inside(ns["internet"], lambda: socket.create_connection((FLOATING, 80), 3.0))
        flows.append(client)
        conn = accepted(servers["g1"], client.getsockname()[1])
        flows.append(conn)
        client.sendall(b"a")
        assert conn.recv(1) == b"a"

        # Re-association moves the address to g2 (whose group opens 8080, not 80).
        _associate(world.log, GUESTS["g2"])
        started = time.monotonic()
        await world.converge()
        assert eventually(lambda: connects(ns["internet"], FLOATING, 8080, timeout=0.5))
        print(f"re-associate -> first TCP connection: {time.monotonic() - started:.3f} s")
        # ... does not outlive it: its flow is forgotten, nothing more reaches g1.
        client.sendall(b"b")
        conn.settimeout(1.5)
        with pytest.raises(TimeoutError):
            conn.recv(1)
        assert not connects(ns["internet"], FLOATING, 80, timeout=0.5)
        assert source_seen(server, ns["g2"], EXT_GATEWAY, 9000) == FLOATING
        assert source_seen(server, ns["g1"], EXT_GATEWAY, 9000) == ROUTER_A_IP

        # A restarted agent (a new driver, nothing remembered) converges on the same plan.
        restarted = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns["host"], host=HOST)
        try:
            await AgentEffects(restarted).converge(
                Converge(host_plan(world.log.state, VTEP, PREFIX))
            )
        finally:
            await restarted.close()
        assert eventually(lambda: connects(ns["internet"], FLOATING, 8080, timeout=0.5))

        # Dissociated and released: the address and its NAT elements are gone.
        world.log.write(FloatingIpDissociated(port_id=GUESTS["g2"].port_id), FIP, "tenant-a")
        world.log.write(FloatingIpReleased(external_network_id=EXT, ip=FLOATING), FIP, "tenant-a")
        await world.converge()
        router_a = names.router_namespace(ROUTER_A, HOST, PREFIX)
        assert FLOATING not in sh("ip", "addr", "show", netns=router_a).stdout
        assert FLOATING not in sh("nft", "list", "table", "ip", "virga_nat", netns=router_a).stdout
        assert FLOATING not in translated_flows(router_a)  # no translated flow outlives it
        assert not pings(ns["internet"], FLOATING, wait=0.5)

        # Routers gone: their namespaces (legs, NAT tables, conntrack) with them.
        for router, tenant, net in ((ROUTER_A, "tenant-a", NET_A), (ROUTER_B, "tenant-b", NET_B)):
            world.log.write(RouterInterfaceRemoved(network_id=net), router, tenant)
            world.log.write(RouterDeleted(external_network_id=EXT), router, tenant)
        await world.converge()
        assert world.router_namespaces() == set()
        left = {n for n in links(ns["host"]) if n.startswith((f"{PREFIX}i", f"{PREFIX}g"))}
        assert left == set()
        zones = sh("nft", "list", "map", "inet", f"virga_{PREFIX}", "zones", netns=ns["host"])
        assert f"{PREFIX}i" not in zones.stdout  # the legs' conntrack zones went with them
        assert not pings(ns["g1"], "10.0.0.1", wait=0.5)
    finally:
        for sock in [*servers.values(), *flows]:
            sock.close()
