"""Centralized SNAT on three hosts: each host namespace plumbed by its own netlink driver from
its own fold of the same events, the hosts joined by a VXLAN underlay (a bridge in the
"internet" namespace), and the "internet" switching their external bridges together.

Tenant 1's router has its SNAT host on A (its first host by name); tenant 2's, with the same
CIDR, on B. A guest without a floating IP on another host reaches the internet through its
router's SNAT port on the SNAT host, and the internet sees the router's address; a guest
with a floating IP leaves by its own floating IP. When the SNAT host changes, or the
interfaces go, the legs, rules and namespaces go with them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from tests.support.l3 import captured, connects, eventually, listener, source_seen
from tests.support.l3_hosts import HostsCloud, host_namespaces, plug_guests, running_cloud, vteps
from tests.support.netns import links, pings, sh

from virga_events.catalog.l3 import (
    FloatingIpAllocated,
    FloatingIpAssociationAccepted,
    RouterCreated,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortDeleted,
    PortHostAssigned,
    SecurityGroupCreated,
    SecurityGroupRule,
)
from virga_network.agent.core import names

PREFIX = "vt6"
RUN = uuid.uuid4().hex[:8]
HOSTS = vteps(RUN, 3)
HOST_A, HOST_B, HOST_C = sorted(HOSTS)
EXT, EXT_GATEWAY, FIP, FLOATING = "ext-6", "203.0.113.1", "fip-6", "203.0.113.101"
RULES = (
    SecurityGroupRule(direction="egress", ethertype="IPv4"),
    SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="icmp"),
)


@dataclass(frozen=True)
class Tenant:
    tenant: str
    router: str
    router_ip: str
    network: str
    vni: int
    snat_mac: str


@dataclass(frozen=True)
class Guest:
    name: str
    tenant: Tenant
    host: str
    ip: str
    mac: str

    @property
    def port_id(self) -> str:
        return f"port-{self.name}-{RUN}"


ONE = Tenant("tenant-1", "router-61", "203.0.113.11", str(uuid.uuid4()), 3601, "fa:16:3e:06:01:03")
TWO = Tenant("tenant-2", "router-62", "203.0.113.12", str(uuid.uuid4()), 3602, "fa:16:3e:06:02:03")
GUESTS = {
    g.name: g
    for g in (
        Guest("g1a", ONE, HOST_A, "10.0.0.11", "02:00:06:01:00:0b"),
        Guest("g1b", ONE, HOST_B, "10.0.0.12", "02:00:06:01:00:0c"),
        Guest("g1f", ONE, HOST_B, "10.0.0.13", "02:00:06:01:00:0d"),
        Guest("g2b", TWO, HOST_B, "10.0.0.12", "02:00:06:02:00:0c"),
        Guest("g2c", TWO, HOST_C, "10.0.0.11", "02:00:06:02:00:0b"),
    )
}


class Cloud(HostsCloud):
    async def converge(self) -> None:
        """Converge every host, twice: what one reports (PortBound) every host folds."""
        for _ in range(2):
            await self.converge_hosts()


def _events(cloud: Cloud) -> None:
    cloud.register(EXT, EXT_GATEWAY)
    for t in (ONE, TWO):
        cloud.write(
            NetworkCreated(name="n", cidr="10.0.0.0/24", vni=t.vni, gateway_ip="10.0.0.1",
                           allocation_pools=()),
            t.network, t.tenant,
        )  # fmt: skip
        cloud.write(SecurityGroupCreated(name="web", rules=RULES), f"web-{t.tenant}", t.tenant)
    for g in GUESTS.values():
        t = g.tenant
        allocated = PortAllocated(
            network_id=t.network, mac=g.mac, ips=(g.ip,), security_groups=(f"web-{t.tenant}",)
        )
        cloud.write(allocated, g.port_id, t.tenant)
        cloud.write(PortHostAssigned(host=g.host), g.port_id, t.tenant)
    for t in (ONE, TWO):
        created = RouterCreated(name="r", external_network_id=EXT, external_ip=t.router_ip)
        cloud.write(created, t.router, t.tenant)
        added = RouterInterfaceAdded(
            network_id=t.network, gateway_ip="10.0.0.1", snat_mac=t.snat_mac, snat_ip="10.0.0.3"
        )
        cloud.write(added, t.router, t.tenant)
    cloud.write(FloatingIpAllocated(external_network_id=EXT, ip=FLOATING), FIP, ONE.tenant)


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    with host_namespaces(PREFIX, HOSTS, GUESTS, EXT_GATEWAY, bridged_underlay=True) as wanted:
        yield wanted


@pytest.fixture
async def cloud(ns: dict[str, str]) -> AsyncIterator[Cloud]:
    async with running_cloud(Cloud, PREFIX, HOSTS, ns) as cloud:
        _events(cloud)
        await cloud.converge()
        plug_guests(cloud, GUESTS.values(), "10.0.0.1")
        yield cloud


def _router_ns(t: Tenant, host: str) -> str:
    return names.router_namespace(t.router, host, PREFIX)


def _rules(namespace: str) -> str:
    return " ".join(
        line for line in sh("ip", "rule", "show", netns=namespace).stdout.splitlines()
        if line.startswith(("1000:", "1001:"))
    )  # fmt: skip


async def test_guests_without_a_floating_ip_leave_by_their_routers_snat_host(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    internet = listener(ns["internet"], 9000)

    def seen(guest: str) -> str:
        """The source the internet sees `guest` connect from (earlier connections dropped)."""
        assert eventually(lambda: connects(ns[guest], EXT_GATEWAY, 9000, timeout=0.5))
        internet.settimeout(0.05)
        with contextlib.suppress(TimeoutError):
            while True:
                internet.accept()[0].close()
        return source_seen(internet, ns[guest], EXT_GATEWAY, 9000)

    try:
        # Tenant 1 (SNAT host A): its guests on A and on B leave with the router's address.
        assert seen("g1a") == ONE.router_ip
        assert seen("g1b") == ONE.router_ip
        assert pings(ns["g1b"], EXT_GATEWAY)  # and the answers come back
        assert "10.0.0." not in captured(ns["internet"], lambda: connects(
            ns["g1b"], EXT_GATEWAY, 9000, timeout=0.5))  # fmt: skip
        # Only A's router answers for the router's address; B's has a redirect, no SNAT leg.
        assert ONE.router_ip not in sh("ip", "addr", "show", netns=_router_ns(ONE, HOST_B)).stdout
        assert "fwmark 0x1" in _rules(_router_ns(ONE, HOST_B))
        assert "fwmark 0x2" in _rules(_router_ns(ONE, HOST_A))
        # Tenant 2, the same CIDR (SNAT host B): its guest on C leaves with its router's.
        assert seen("g2c") == TWO.router_ip
        assert seen("g2b") == TWO.router_ip
        assert pings(ns["g2c"], EXT_GATEWAY)

        # A floating IP on B: that guest leaves by it, its neighbour still by the SNAT host.
        accepted = FloatingIpAssociationAccepted(
            port_id=GUESTS["g1f"].port_id, network_id=ONE.network, fixed_ip="10.0.0.13",
            host=HOST_B,
        )  # fmt: skip
        cloud.write(accepted, FIP, ONE.tenant)
        await cloud.converge()
        assert seen("g1f") == FLOATING
        assert seen("g1b") == ONE.router_ip

        # Tenant 1's only port on A goes: B becomes its SNAT host, its redirect goes.
        cloud.write(PortDeleted(), GUESTS["g1a"].port_id, ONE.tenant)
        await cloud.converge()
        b_router = _router_ns(ONE, HOST_B)
        redirect = names.veth_peer(names.router_interface_name(
            ONE.router, f"{ONE.network}/redirect", PREFIX))  # fmt: skip
        snat_leg = names.veth_peer(names.router_interface_name(
            ONE.router, f"{ONE.network}/snat", PREFIX))  # fmt: skip
        assert redirect not in links(b_router)
        assert snat_leg in links(b_router)
        assert "fwmark 0x1" not in _rules(b_router)
        assert "fwmark 0x2" in _rules(b_router)
        assert _router_ns(ONE, HOST_A) not in sh("ip", "netns", "list").stdout
        assert seen("g1b") == ONE.router_ip
        assert seen("g1f") == FLOATING

        # The interfaces go: no router namespace, leg or rule is left on any host.
        for t in (ONE, TWO):
            cloud.write(RouterInterfaceRemoved(network_id=t.network), t.router, t.tenant)
        await cloud.converge()
        left = sh("ip", "netns", "list").stdout
        for host in HOSTS:
            assert _router_ns(ONE, host) not in left
            assert _router_ns(TWO, host) not in left
            assert not [n for n in links(ns[host]) if n.startswith(f"{PREFIX}i")]
        assert not connects(ns["g1b"], EXT_GATEWAY, 9000, timeout=0.5)
    finally:
        internet.close()
