"""An IPv6 network behind a router across two hosts: each host namespace plumbed by its own
netlink driver and served by its own `EdgeServer` from its own fold of the same events, the
hosts joined by a VXLAN underlay.

The guest on each host takes its default route from its own host's edge (the router's
link-local address, the same on both hosts) and reaches the gateway on its own host's
router; the two guests reach each other across the tunnel; the router's detachment
withdraws the default route on both hosts.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial

import pytest
from tests.support.l3 import Log, eventually, eventually_async
from tests.support.l3_hosts import (
    Guest,
    HostsCloud,
    host_namespaces,
    leftover_namespaces,
    plug_guests,
    running_cloud,
    vteps,
)
from tests.support.netns import pings, sh

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
    SecurityGroupRule,
)
from virga_network.agent.core import names
from virga_network.agent.core.edge import EdgeSettings
from virga_network.agent.core.l3 import router_mac
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.nft_text import link_local
from virga_network.agent.drivers import netlink_edge
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.edge import EdgeServer
from virga_network.agent.effects.converge import AgentEffects

PREFIX = "vm6"
RUN = uuid.uuid4().hex[:8]
HOSTS = vteps(RUN)
HOST_A, HOST_B = sorted(HOSTS)
NET, EXT, ROUTER, TENANT = str(uuid.uuid4()), "ext-7", "router-7", "tenant-a"
GATEWAY = "fd00:7::1"
ROUTER_LL = link_local(router_mac(ROUTER, NET))
RULES = (
    SecurityGroupRule(direction="egress", ethertype="IPv6"),
    SecurityGroupRule(direction="ingress", ethertype="IPv6", protocol="icmpv6"),
)


GUESTS = (
    Guest("ga", HOST_A, "fd00:7::11", "02:00:0a:00:07:11"),
    Guest("gb", HOST_B, "fd00:7::12", "02:00:0a:00:07:12"),
)


class Cloud(HostsCloud):
    async def converge(self) -> None:
        """Converge every host; what one reports (PortBound) every host folds."""
        await self.converge_hosts()


def _events(cloud: Cloud) -> None:
    cloud.register(EXT, "203.0.113.1")
    cloud.write(
        NetworkCreated(name="v6", cidr="fd00:7::/64", vni=3301, gateway_ip=GATEWAY,
                       allocation_pools=()),
        NET,
    )  # fmt: skip
    cloud.write(SecurityGroupCreated(name="v6", rules=RULES), "v6")
    for g in GUESTS:
        allocated = PortAllocated(network_id=NET, mac=g.mac, ips=(g.ip,), security_groups=("v6",))
        cloud.write(allocated, g.port_id)
        cloud.write(PortHostAssigned(host=g.host), g.port_id)
    cloud.write(RouterCreated(name="r", external_network_id=EXT, external_ip="203.0.113.17"),
                ROUTER)  # fmt: skip
    cloud.write(RouterInterfaceAdded(network_id=NET, gateway_ip=GATEWAY), ROUTER)


def _ours() -> set[str]:
    return leftover_namespaces(PREFIX, HOSTS, "re")


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    guests = (g.name for g in GUESTS)
    with host_namespaces(PREFIX, HOSTS, guests, None, leftovers="re") as wanted:
        yield wanted


@pytest.fixture
async def cloud(ns: dict[str, str]) -> AsyncIterator[Cloud]:
    servers: dict[str, EdgeServer] = {}

    def effects(host: str, driver: NetlinkDriver, log: Log) -> AgentEffects:
        servers[host] = EdgeServer(partial(_state, log), EdgeSettings(), netlink_edge.edge_sockets)
        return AgentEffects(driver, edges=servers[host].serve)

    async with running_cloud(Cloud, PREFIX, HOSTS, ns, TENANT, effects=effects, edges=True) as c:
        try:
            _events(c)
            await c.converge()
            await c.converge()  # the peers' PortBound: VXLAN forwarding towards each other
            plug_guests(c, GUESTS, None)
            yield c
        finally:
            for server in servers.values():
                await server.close()


def _state(log: Log) -> NetworkAgentState:
    return log.state


def _default_router(guest_ns: str) -> str:
    return sh("ip", "-6", "route", "show", "default", netns=guest_ns).stdout.strip()


def _routes_via_router(guest_ns: str) -> bool:
    return f"via {ROUTER_LL} " in _default_router(guest_ns)


def _no_default_route(guest_ns: str) -> bool:
    return _default_router(guest_ns) == ""


async def test_each_host_advertises_and_answers_the_ipv6_gateway_of_its_own_router(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    for g in GUESTS:
        assert await eventually_async(partial(_routes_via_router, ns[g.name]), 20)
        assert eventually(partial(pings, ns[g.name], GATEWAY))
    # Both hosts' routers hold the gateway address; the guests reach each other.
    for host in HOSTS:
        router_ns = names.router_namespace(ROUTER, host, PREFIX)
        assert f"{GATEWAY}/64" in sh("ip", "-6", "addr", "show", netns=router_ns).stdout
    assert eventually(lambda: pings(ns["ga"], GUESTS[1].ip))

    cloud.write(RouterInterfaceRemoved(network_id=NET), ROUTER)
    await cloud.converge()
    for g in GUESTS:
        assert await eventually_async(partial(_no_default_route, ns[g.name]), 5)
        assert not pings(ns[g.name], GATEWAY, wait=0.5)
    assert _ours() == {f"{names.edge_name(NET, PREFIX)}-{h}" for h in HOSTS}  # no router left
    assert pings(ns["ga"], GUESTS[1].ip)  # the network itself goes on
