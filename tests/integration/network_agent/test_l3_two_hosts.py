"""A floating IP moving between two hosts: each host namespace plumbed by its own netlink
driver from its own fold of the same events, the hosts joined by a VXLAN underlay, and an
"internet" namespace switching both hosts' external bridges together.

Re-pointing the floating IP from a guest on host 1 to a guest on host 2 must reach the
internet's ARP cache at once (the gratuitous ARP of the host that takes the address over),
and each host's guests must reach their own host's router at the same gateway address.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.support.l3 import (
    captured,
    connects,
    eventually,
    eventually_async,
    listener,
    source_seen,
)
from tests.support.l3_hosts import (
    WEB_RULES,
    Guest,
    HostsCloud,
    host_namespaces,
    plug_guests,
    running_cloud,
    vteps,
)
from tests.support.netns import pings, sh

from virga_events.catalog.l3 import (
    FloatingIpAllocated,
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpDissociated,
    FloatingIpUnplumbed,
    RouterCreated,
    RouterInterfaceAdded,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    SecurityGroupCreated,
)
from virga_network.agent.core import names

PREFIX = "vm3"
RUN = uuid.uuid4().hex[:8]
HOSTS = vteps(RUN)
HOST_A, HOST_B = sorted(HOSTS)
NET, EXT, ROUTER, FIP, TENANT = str(uuid.uuid4()), "ext-2", "router-2", "fip-2", "tenant-a"
FLOATING, ROUTER_IP, EXT_GATEWAY = "203.0.113.101", "203.0.113.11", "203.0.113.1"
RULES = WEB_RULES


GUESTS = (
    Guest("ga", HOST_A, "10.0.0.11", "02:00:0a:00:01:0b"),
    Guest("gb", HOST_B, "10.0.0.12", "02:00:0a:00:01:0c"),
)


class Cloud(HostsCloud):
    async def converge(self) -> list[tuple[str, str, str]]:
        """Converge every host; what one reports (PortBound) every host folds. What each
        reported about floating IPs: (host, event type, port)."""
        reported: list[tuple[str, str, str]] = []
        for host, event in await self.converge_hosts():
            if isinstance(event, FloatingIpAssociated | FloatingIpUnplumbed):
                assert event.host == host
                reported.append((host, event.TYPE, event.port_id))
        return reported

    def associate(self, guest: Guest) -> None:
        associated = FloatingIpAssociationAccepted(
            port_id=guest.port_id, network_id=NET, fixed_ip=guest.ip, host=guest.host
        )
        self.write(associated, FIP)


def _events(cloud: Cloud) -> None:
    cloud.register(EXT, EXT_GATEWAY)
    cloud.write(
        NetworkCreated(name="a", cidr="10.0.0.0/24", vni=3101, gateway_ip="10.0.0.1",
                       allocation_pools=()),
        NET,
    )  # fmt: skip
    cloud.write(SecurityGroupCreated(name="web", rules=RULES), "web")
    for g in GUESTS:
        allocated = PortAllocated(network_id=NET, mac=g.mac, ips=(g.ip,), security_groups=("web",))
        cloud.write(allocated, g.port_id)
        cloud.write(PortHostAssigned(host=g.host), g.port_id)
    cloud.write(RouterCreated(name="r", external_network_id=EXT, external_ip=ROUTER_IP), ROUTER)
    cloud.write(RouterInterfaceAdded(network_id=NET, gateway_ip="10.0.0.1"), ROUTER)
    cloud.write(FloatingIpAllocated(external_network_id=EXT, ip=FLOATING), FIP)


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    with host_namespaces(PREFIX, HOSTS, (g.name for g in GUESTS), EXT_GATEWAY) as wanted:
        yield wanted


@pytest.fixture
async def cloud(ns: dict[str, str]) -> AsyncIterator[Cloud]:
    async with running_cloud(Cloud, PREFIX, HOSTS, ns, TENANT) as cloud:
        _events(cloud)
        await cloud.converge()
        await cloud.converge()  # the peers' PortBound: VXLAN forwarding towards each other
        plug_guests(cloud, GUESTS, "10.0.0.1")
        yield cloud


async def test_a_floating_ip_moves_between_hosts_and_the_internet_follows_at_once(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    servers = [listener(ns["ga"], 80), listener(ns["gb"], 80)]
    internet = listener(ns["internet"], 9000)
    try:
        # Each guest's gateway is its own host's router; the two guests reach each other.
        assert eventually(lambda: pings(ns["ga"], "10.0.0.1"))
        assert eventually(lambda: pings(ns["gb"], "10.0.0.1"))
        assert eventually(lambda: pings(ns["ga"], "10.0.0.12"))
        # The router's address is on the first host only.
        assert ROUTER_IP in sh("ip", "addr", "show", netns=names.router_namespace(
            ROUTER, HOST_A, PREFIX)).stdout  # fmt: skip
        assert ROUTER_IP not in sh("ip", "addr", "show", netns=names.router_namespace(
            ROUTER, HOST_B, PREFIX)).stdout  # fmt: skip

        # gb, on the router's other host, has no way out without a floating IP: nothing
        # leaves with its fixed address.
        assert not connects(ns["gb"], EXT_GATEWAY, 9000, timeout=0.5)
        assert "10.0.0.12" not in captured(ns["internet"], lambda: connects(
            ns["gb"], EXT_GATEWAY, 9000, timeout=0.5))  # fmt: skip

        cloud.associate(GUESTS[0])
        # Its host (only) confirms, once its rules are in place; nothing more the next time.
        assert await cloud.converge() == [(HOST_A, "FloatingIpAssociated", GUESTS[0].port_id)]
        assert await cloud.converge() == []
        assert eventually(lambda: connects(ns["internet"], FLOATING, 80, timeout=0.5))
        assert source_seen(internet, ns["ga"], EXT_GATEWAY, 9000) == FLOATING
        servers[0].settimeout(3.0)
        servers[0].accept()[0].close()  # the connection came to ga

        # To host 2: the internet's neighbour entry (fresh, REACHABLE) is re-pointed by the
        # gratuitous ARP, so the next connection goes to gb without waiting for it to age.
        cloud.associate(GUESTS[1])
        started = time.monotonic()
        # The old host removes it (and says so), the new host plumbs it and confirms.
        assert await cloud.converge() == [
            (HOST_A, "FloatingIpUnplumbed", GUESTS[0].port_id),
            (HOST_B, "FloatingIpAssociated", GUESTS[1].port_id),
        ]
        assert await eventually_async(lambda: connects(ns["internet"], FLOATING, 80, 0.3), 5.0)
        moved = time.monotonic() - started
        print(f"floating IP moved between hosts -> first TCP connection: {moved:.3f} s")
        assert moved < 2.0
        servers[1].settimeout(3.0)
        servers[1].accept()[0].close()  # ... and came to gb
        assert source_seen(internet, ns["gb"], EXT_GATEWAY, 9000) == FLOATING

        cloud.write(FloatingIpDissociated(port_id=GUESTS[1].port_id), FIP)
        assert await cloud.converge() == [(HOST_B, "FloatingIpUnplumbed", GUESTS[1].port_id)]
        for host in HOSTS:
            router_ns = names.router_namespace(ROUTER, host, PREFIX)
            assert FLOATING not in sh("ip", "addr", "show", netns=router_ns).stdout
        assert not connects(ns["internet"], FLOATING, 80, timeout=0.5)
    finally:
        for sock in [*servers, internet]:
            sock.close()
