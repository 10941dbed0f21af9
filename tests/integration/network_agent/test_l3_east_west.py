"""Routed east-west across hosts (Neutron's DVR): each host namespace plumbed by its own
netlink driver from its own fold of the same events, the hosts joined by a VXLAN underlay,
and an "internet" namespace switching both hosts' external bridges together.

One router, two networks: ga (network A) on host A, gb (network B) and gc (network A) on
host B. Host A has no port on network B, yet it routes ga's traffic to gb itself (the source
host routes), and is the router's SNAT host, so it also takes gb's way out. Frames a router
sends onto a tunnel carry a MAC of its host (`l3.routed_mac`), never the router's shared one.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.support import frames, vxlan
from tests.support.l3 import connects, eventually, listener, source_seen
from tests.support.l3_hosts import (
    WEB_RULES,
    HostsCloud,
    host_namespaces,
    plug_guests,
    running_cloud,
    vteps,
)
from tests.support.netns import links, pings, sh

from virga_events.catalog.l3 import (
    RouterCreated,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    SecurityGroupCreated,
)
from virga_network.agent.core import names
from virga_network.agent.core.dvr import routed_mac
from virga_network.agent.core.l3 import router_mac
from virga_network.agent.core.plan import host_plan
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

PREFIX = "ve7"
RUN = uuid.uuid4().hex[:8]
HOSTS = vteps(RUN)
HOST_A, HOST_B = sorted(HOSTS)
ATTACKER = "192.0.2.9"
TENANT, EXT, ROUTER, ROUTER_IP = "tenant-7", "ext-7", "router-7", "203.0.113.17"
EXT_GATEWAY = "203.0.113.1"
NET_A, NET_B = str(uuid.uuid4()), str(uuid.uuid4())
VNI = {NET_A: 3701, NET_B: 3702}
CIDR = {NET_A: "10.1.0.0/24", NET_B: "10.2.0.0/24"}
SNAT = {NET_A: ("fa:16:3e:07:01:03", "10.1.0.3"), NET_B: ("fa:16:3e:07:02:03", "10.2.0.3")}
FRAMES, VXLAN = str(Path(frames.__file__)), str(Path(vxlan.__file__))
RULES = WEB_RULES


@dataclass(frozen=True)
class Guest:
    name: str
    network: str
    host: str
    ip: str
    mac: str

    @property
    def port_id(self) -> str:
        return f"port-{self.name}-{RUN}"

    @property
    def gateway(self) -> str:
        return CIDR[self.network].replace("0/24", "1")


GA = Guest("ga", NET_A, HOST_A, "10.1.0.11", "02:00:07:01:00:0b")
GB = Guest("gb", NET_B, HOST_B, "10.2.0.12", "02:00:07:02:00:0c")
GC = Guest("gc", NET_A, HOST_B, "10.1.0.13", "02:00:07:01:00:0d")
GUESTS = {g.name: g for g in (GA, GB, GC)}


class Cloud(HostsCloud):
    async def converge(self) -> None:
        """Converge every host, twice: what one reports (PortBound) every host folds."""
        for _ in range(2):
            await self.converge_hosts()


def _events(cloud: Cloud) -> None:
    cloud.register(EXT, EXT_GATEWAY)
    for network in (NET_A, NET_B):
        gateway = CIDR[network].replace("0/24", "1")
        created = NetworkCreated(
            name="n", cidr=CIDR[network], vni=VNI[network], gateway_ip=gateway,
            allocation_pools=(),
        )  # fmt: skip
        cloud.write(created, network)
    cloud.write(SecurityGroupCreated(name="web", rules=RULES), "web-7")
    for g in GUESTS.values():
        allocated = PortAllocated(
            network_id=g.network, mac=g.mac, ips=(g.ip,), security_groups=("web-7",)
        )
        cloud.write(allocated, g.port_id)
        cloud.write(PortHostAssigned(host=g.host), g.port_id)
    cloud.write(RouterCreated(name="r", external_network_id=EXT, external_ip=ROUTER_IP), ROUTER)
    for network in (NET_A, NET_B):
        mac, ip = SNAT[network]
        gateway = CIDR[network].replace("0/24", "1")
        added = RouterInterfaceAdded(
            network_id=network, gateway_ip=gateway, snat_mac=mac, snat_ip=ip
        )
        cloud.write(added, ROUTER)


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    with host_namespaces(PREFIX, HOSTS, GUESTS, EXT_GATEWAY) as wanted:
        # Another address on host B's side of the underlay: no known VTEP.
        sh("ip", "addr", "add", f"{ATTACKER}/24", "dev", "ve7under", netns=wanted[HOST_B])
        yield wanted


def _drivers(ns: dict[str, str]) -> dict[str, NetlinkDriver]:
    return {
        host: NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=ns[host], host=host)
        for host in HOSTS
    }


@pytest.fixture
async def cloud(ns: dict[str, str]) -> AsyncIterator[Cloud]:
    async with running_cloud(Cloud, PREFIX, HOSTS, ns, TENANT) as cloud:
        _events(cloud)
        await cloud.converge()
        plug_guests(cloud, GUESTS.values(), lambda g: g.gateway)
        yield cloud


def _rtt(ns: dict[str, str], source: Guest, destination: Guest) -> float:
    """The average round trip of five pings, in milliseconds."""
    out = sh("ping", "-c", "5", "-i", "0.2", destination.ip, netns=ns[source.name]).stdout
    found = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert found is not None, out
    return float(found.group(1))


def _talk(ns: dict[str, str], one: Guest, other: Guest) -> None:
    """`one` and `other` ping each other and each opens a TCP connection to the other."""
    assert eventually(lambda: pings(ns[one.name], other.ip))
    assert pings(ns[other.name], one.ip)
    servers = {g.name: listener(ns[g.name], 80) for g in (one, other)}
    try:
        for client, server in ((one, other), (other, one)):

            def reached(client: Guest = client, server: Guest = server) -> bool:
                return connects(ns[client.name], server.ip, 80)

            assert eventually(reached, 5.0)
            servers[server.name].settimeout(3.0)
            servers[server.name].accept()[0].close()
    finally:
        for sock in servers.values():
            sock.close()


def _host_links(ns: dict[str, str], host: str) -> set[str]:
    return {n for n in links(ns[host]) if n.startswith(PREFIX)}


async def test_guests_on_other_hosts_and_networks_of_a_router_reach_each_other(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    _talk(ns, GA, GB)  # across hosts and networks: each host routes what its guests send
    _talk(ns, GC, GB)  # the same host, as before
    _talk(ns, GA, GC)  # the same network across hosts, as before
    print(f"ping RTT ga -> gb (routed across hosts): {_rtt(ns, GA, GB):.3f} ms")
    print(f"ping RTT gc -> gb (routed on one host): {_rtt(ns, GC, GB):.3f} ms")
    # Host B's bridge learnt host A's router behind the tunnel by A's own MAC, never by
    # the router's (B's leg has that one).
    learnt = sh("bridge", "fdb", "show", "dev", names.vxlan_name(NET_B, PREFIX),
                netns=ns[HOST_B]).stdout  # fmt: skip
    assert routed_mac(ROUTER, NET_B, HOST_A) in learnt
    assert router_mac(ROUTER, NET_B) not in learnt

    # gb has no floating IP, and its router's SNAT host (A) has no port on its network.
    internet = listener(ns["internet"], 9000)
    try:
        assert eventually(lambda: connects(ns["gb"], EXT_GATEWAY, 9000, timeout=0.5))
        internet.settimeout(3.0)
        internet.accept()[0].close()
        assert source_seen(internet, ns["gb"], EXT_GATEWAY, 9000) == ROUTER_IP
        assert pings(ns["gb"], EXT_GATEWAY)
    finally:
        internet.close()

    # A restarted agent on each host (new drivers, nothing remembered) makes the same.
    before = {host: _host_links(ns, host) for host in HOSTS}
    restarted = _drivers(ns)
    try:
        for host, driver in restarted.items():
            plan = host_plan(cloud.logs[host].state, HOSTS[host], PREFIX)
            assert await AgentEffects(driver).converge(Converge(plan)) == []
    finally:
        for driver in restarted.values():
            await driver.close()
    assert {host: _host_links(ns, host) for host in HOSTS} == before
    _talk(ns, GA, GB)

    # Network B leaves the router: host A's leg, bridge and tunnel on it go; A is still
    # the router's host (ga), B still routes nothing to A.
    bridge_b = names.bridge_name(NET_B, PREFIX)
    leg_b = names.router_interface_name(ROUTER, NET_B, PREFIX)
    assert {bridge_b, leg_b} <= _host_links(ns, HOST_A)
    cloud.write(RouterInterfaceRemoved(network_id=NET_B), ROUTER)
    await cloud.converge()
    snat_b = names.router_interface_name(ROUTER, f"{NET_B}/snat", PREFIX)
    gone = {bridge_b, names.vxlan_name(NET_B, PREFIX), leg_b, snat_b}
    assert not gone & _host_links(ns, HOST_A)
    assert not pings(ns["ga"], GB.ip)
    assert pings(ns["ga"], GC.ip)

    # Network A too: no router namespace or leg is left on any host.
    cloud.write(RouterInterfaceRemoved(network_id=NET_A), ROUTER)
    await cloud.converge()
    left = sh("ip", "netns", "list").stdout
    for host in HOSTS:
        assert names.router_namespace(ROUTER, host, PREFIX) not in left
        assert not [n for n in _host_links(ns, host) if n.startswith(f"{PREFIX}i")]
    assert bridge_b not in _host_links(ns, HOST_A)


def _sniff(ns: dict[str, str], guest: Guest) -> subprocess.Popen[str]:
    """Capture on the guest's eth0 until a frame marked `virga-end` arrives (20 s at most)."""
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", ns[guest.name], sys.executable, FRAMES, "sniff", "eth0", "20",
         "virga-end"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert sniffer.stdout is not None
    assert sniffer.stdout.readline().strip() == "listening"
    return sniffer


async def test_only_a_routers_own_host_routes_into_a_network_with_its_mac(cloud: Cloud) -> None:
    """A router's routed frames come in from its host's VTEP only, as IP from that host's
    ports on the router's other networks; a guest cannot send with a router's MAC."""
    ns = cloud.ns
    assert eventually(lambda: pings(ns["ga"], GB.ip))
    b_mac = routed_mac(ROUTER, NET_A, HOST_B)

    def icmp(mac: str, source: str, marker: bytes) -> bytes:
        return frames.ipv4_icmp(mac, GA.mac, source, GA.ip, marker)

    sent = {
        "legit": icmp(b_mac, GB.ip, b"virga-legit"),  # gb's, routed by host B's router
        # Not gb's network's router traffic: gc is on network A itself, 10.2.0.99 nobody.
        "same-network": icmp(b_mac, GC.ip, b"virga-same"),
        "unknown": icmp(b_mac, "10.2.0.99", b"virga-unknown"),
        # Host A's own routed MAC, or the router's shared one, from host B.
        "a-mac": icmp(routed_mac(ROUTER, NET_A, HOST_A), GB.ip, b"virga-a-mac"),
        "shared-mac": icmp(router_mac(ROUTER, NET_A), GB.ip, b"virga-shared"),
        # No ARP at all with a routed MAC: not the gateway's, not gb's address.
        "arp-gateway": frames.arp_reply(b_mac, b_mac, GA.gateway, GA.ip),
        "arp-source": frames.arp_reply(b_mac, b_mac, GB.ip, GA.ip),
    }
    forged = {"other-vtep": icmp(b_mac, GB.ip, b"virga-other-vtep")}
    spoofed = {"guest": icmp(b_mac, GB.ip, b"virga-guest")}
    end = {"end": icmp(b_mac, GB.ip, b"virga-end")}
    sniffer = _sniff(ns, GA)
    host_b = ns[HOST_B]
    # A guest on host B (gc, network A) sends as host B's router would: its tap drops it.
    sh(sys.executable, FRAMES, "send", "eth0", spoofed["guest"].hex(), netns=ns["gc"])
    # Host B's underlay, from an address that is not its VTEP.
    sh(sys.executable, VXLAN, "send", ATTACKER, HOSTS[HOST_A], str(VNI[NET_A]),
       forged["other-vtep"].hex(), netns=host_b)  # fmt: skip
    sh(sys.executable, VXLAN, "send", HOSTS[HOST_B], HOSTS[HOST_A], str(VNI[NET_A]),
       *(f.hex() for f in [*sent.values(), end["end"]]), netns=host_b)  # fmt: skip
    captured, _ = sniffer.communicate(timeout=30)
    everything = sent | forged | spoofed | end
    assert {name for name, f in everything.items() if f.hex() in captured} == {"legit", "end"}
    # The gateway is still the router on ga's own host.
    gateway = sh("ip", "neigh", "show", GA.gateway, netns=ns["ga"]).stdout
    assert router_mac(ROUTER, NET_A) in gateway
