"""A live migration's port steps on two real hosts: each host namespace plumbed by its own
netlink driver from its own fold of the same events, joined by a VXLAN underlay, both external
bridges switched together in an "internet" namespace (as in test_l3_two_hosts.py).

The migrating guest's port is plumbed on host 2 while it is bound on host 1 (traffic keeps
going to host 1), the guest namespace then moves its interface to host 2's veth (the guest
resumes there), and the switch moves the binding: a third guest on host 1 reaches it on host
2, the internet reaches its floating IP there, and nothing of it is left on host 1. Or,
sooner: the guest's first frame on host 2's tap activates it there (MigrationPortActivated),
and the traffic follows before any switch.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from tests.support.l3 import Log, connects, eventually, eventually_async, listener
from tests.support.l3_hosts import (
    WEB_RULES,
    HostsCloud,
    host_namespaces,
    plug_guests,
    running_cloud,
    vteps,
)
from tests.support.l3_hosts import Guest as HostGuest
from tests.support.netns import pings, plug_guest, sh

from virga_events.catalog.l3 import (
    FloatingIpAllocated,
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpUnplumbed,
    RouterCreated,
    RouterInterfaceAdded,
)
from virga_events.catalog.network import (
    MigrationPortActivated,
    MigrationPortPlumbed,
    MigrationPortSwitched,
    NetworkCreated,
    PortAllocated,
    PortBound,
    PortHostAssigned,
    PortUnbound,
    SecurityGroupCreated,
)
from virga_events.catalog.scheduler import (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_events.registry import Event
from virga_network.agent.core import names
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects

PREFIX = "vmg"
RUN = uuid.uuid4().hex[:8]
HOSTS = vteps(RUN)
HOST_A, HOST_B = sorted(HOSTS)
NET, EXT, ROUTER, FIP, TENANT = str(uuid.uuid4()), "ext-m", "router-m", "fip-m", "tenant-m"
FLOATING, ROUTER_IP, EXT_GATEWAY = "203.0.113.121", "203.0.113.21", "203.0.113.1"
INSTANCE, FLOW = "i-moving", "flow-moving"
RULES = WEB_RULES


@dataclass(frozen=True)
class Guest(HostGuest):
    instance_id: str | None = None

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


MOVING = Guest("gm", HOST_A, "10.0.0.21", "02:00:0a:00:02:15", INSTANCE)
GUESTS = (
    MOVING,
    Guest("gc", HOST_A, "10.0.0.22", "02:00:0a:00:02:16"),
    Guest("gb", HOST_B, "10.0.0.23", "02:00:0a:00:02:17"),
)
THIRD, OTHER = GUESTS[1], GUESTS[2]


class Cloud(HostsCloud):
    async def converge(self) -> list[tuple[str, Event]]:
        """Converge every host; what one writes every host folds. What each wrote."""
        return await self.converge_hosts()

    def links(self, host: str) -> str:
        return sh("ip", "-o", "link", "show", netns=self.ns[host]).stdout

    async def fdb(self, host: str) -> frozenset[tuple[str, str]]:
        return await self.drivers[host].forwarding(names.vxlan_name(NET, PREFIX))

    def router_addresses(self, host: str) -> str:
        return sh("ip", "addr", "show", netns=names.router_namespace(ROUTER, host, PREFIX)).stdout


def kinds(written: list[tuple[str, Event]]) -> set[tuple[str, str]]:
    return {(host, event.TYPE) for host, event in written}


def _events(cloud: Cloud) -> None:
    cloud.register(EXT, EXT_GATEWAY)
    cloud.write(
        NetworkCreated(name="m", cidr="10.0.0.0/24", vni=3201, gateway_ip="10.0.0.1",
                       allocation_pools=()),
        NET,
    )  # fmt: skip
    cloud.write(SecurityGroupCreated(name="web", rules=RULES), "web")
    for g in GUESTS:
        allocated = PortAllocated(network_id=NET, mac=g.mac, ips=(g.ip,), security_groups=("web",),
                                  instance_id=g.instance_id)  # fmt: skip
        cloud.write(allocated, g.port_id)
        cloud.write(PortHostAssigned(host=g.host), g.port_id)
    cloud.write(RouterCreated(name="r", external_network_id=EXT, external_ip=ROUTER_IP), ROUTER)
    cloud.write(RouterInterfaceAdded(network_id=NET, gateway_ip="10.0.0.1"), ROUTER)
    cloud.write(FloatingIpAllocated(external_network_id=EXT, ip=FLOATING), FIP)
    associated = FloatingIpAssociationAccepted(
        port_id=MOVING.port_id, network_id=NET, fixed_ip=MOVING.ip, host=HOST_A
    )
    cloud.write(associated, FIP)


@pytest.fixture
def ns() -> Iterator[dict[str, str]]:
    with host_namespaces(PREFIX, HOSTS, (g.name for g in GUESTS), EXT_GATEWAY) as wanted:
        yield wanted


def _effects(host: str, driver: NetlinkDriver, log: Log) -> AgentEffects:
    # The guests are namespaces: the instance's port is a veth too (QEMU would open a tap).
    return AgentEffects(driver, instance_tap_kind=None)


@pytest.fixture
async def cloud(ns: dict[str, str]) -> AsyncIterator[Cloud]:
    async with running_cloud(Cloud, PREFIX, HOSTS, ns, TENANT, effects=_effects) as cloud:
        _events(cloud)
        await cloud.converge()
        await cloud.converge()  # the peers' PortBound: VXLAN forwarding towards each other
        plug_guests(cloud, GUESTS, "10.0.0.1")
        yield cloud


def plumb() -> MigrationPortPlumbRequested:
    return MigrationPortPlumbRequested(flow_id=FLOW, step="plumb", host=HOST_B)


def switch() -> MigrationPortSwitchRequested:
    return MigrationPortSwitchRequested(
        flow_id=FLOW, step="switch_port", host=HOST_B, source=HOST_A
    )


async def test_a_port_plumbed_unbound_then_switched_takes_its_traffic_and_floating_ip_along(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    server = listener(ns[MOVING.name], 80)
    try:
        assert eventually(lambda: pings(ns[THIRD.name], MOVING.ip))
        assert eventually(lambda: connects(ns["internet"], FLOATING, 80, timeout=0.5))

        # plumb: host 2 makes the port (same tap name, bridge, VXLAN, filters) and says so;
        # nobody binds it, so the forwarding and the floating IP stay on host 1.
        cloud.write(plumb(), INSTANCE)
        written = await cloud.converge()
        assert written == [(HOST_B, MigrationPortPlumbed(flow_id=FLOW, step="plumb",
                                                         host=HOST_B))]  # fmt: skip
        assert await cloud.converge() == []
        assert MOVING.tap in cloud.links(HOST_B)
        assert MOVING.tap in cloud.links(HOST_A)
        assert (MOVING.mac, HOSTS[HOST_A]) in await cloud.fdb(HOST_B)
        assert FLOATING not in cloud.router_addresses(HOST_B)
        assert FLOATING in cloud.router_addresses(HOST_A)
        # The guest on host 2 still reaches it on host 1 (the unbound tap there takes nothing).
        assert pings(ns[OTHER.name], MOVING.ip)
        assert pings(ns[THIRD.name], MOVING.ip)

        # The guest moves (the compute agent's migration): its interface is now host 2's.
        sh("ip", "link", "set", "eth0", "netns", ns[HOST_A], netns=ns[MOVING.name])
        plug_guest(ns[HOST_B], names.veth_peer(MOVING.tap), ns[MOVING.name], MOVING.mac,
                   (MOVING.ip,))  # fmt: skip
        sh("ip", "route", "add", "default", "via", "10.0.0.1", netns=ns[MOVING.name])

        # switch_port: the controller moves the port and its floating IP (its decisions on the
        # request, see tests/unit/network/test_controller_migration.py); the hosts follow.
        started = time.monotonic()
        cloud.write(switch(), INSTANCE)
        cloud.write(PortHostAssigned(host=HOST_B), MOVING.port_id)
        moved = FloatingIpAssociationAccepted(
            port_id=MOVING.port_id, network_id=NET, fixed_ip=MOVING.ip, host=HOST_B
        )
        cloud.write(moved, FIP)
        written = await cloud.converge()
        assert kinds(written) == {
            (HOST_A, PortUnbound.TYPE),
            (HOST_A, FloatingIpUnplumbed.TYPE),
            (HOST_B, PortBound.TYPE),
            (HOST_B, FloatingIpAssociated.TYPE),
        }
        # Answered once its binding is in the log.
        switched = MigrationPortSwitched(flow_id=FLOW, step="switch_port", host=HOST_B)
        assert await cloud.converge() == [(HOST_B, switched)]
        assert await eventually_async(lambda: pings(ns[THIRD.name], MOVING.ip, wait=0.3), 5.0)
        reached = time.monotonic() - started
        print(f"switch request -> first ping answered from host 1's guest: {reached:.3f} s")
        assert await eventually_async(lambda: connects(ns["internet"], FLOATING, 80, 0.3), 5.0)
        server.settimeout(3.0)
        server.accept()[0].close()  # the moved guest answered on its floating IP
        assert pings(ns[OTHER.name], MOVING.ip)

        # Nothing of it left on host 1: no tap, no floating IP; forwarding points at host 2.
        assert MOVING.tap not in cloud.links(HOST_A)
        assert "eth0" not in cloud.links(HOST_A)  # its old end went with the tap
        assert FLOATING not in cloud.router_addresses(HOST_A)
        assert FLOATING in cloud.router_addresses(HOST_B)
        assert (MOVING.mac, HOSTS[HOST_B]) in await cloud.fdb(HOST_A)
        assert all(mac != MOVING.mac for mac, _ in await cloud.fdb(HOST_B))

        # A re-sent request is answered again and changes nothing else.
        cloud.write(switch(), INSTANCE)
        assert await cloud.converge() == [(HOST_B, switched)]
        assert await cloud.converge() == []
        assert pings(ns[THIRD.name], MOVING.ip)
    finally:
        server.close()


async def test_unplumb_removes_the_destinations_plumbing_and_leaves_the_source_alone(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    cloud.write(plumb(), INSTANCE)
    assert [type(e) for _, e in await cloud.converge()] == [MigrationPortPlumbed]
    assert MOVING.tap in cloud.links(HOST_B)
    cloud.write(MigrationPortUnplumbRequested(flow_id=FLOW, host=HOST_B), INSTANCE)
    assert await cloud.converge() == []  # nothing to report: it was never bound there
    assert MOVING.tap not in cloud.links(HOST_B)
    assert names.veth_peer(MOVING.tap) not in cloud.links(HOST_B)
    assert MOVING.tap in cloud.links(HOST_A)
    assert FLOATING in cloud.router_addresses(HOST_A)
    assert eventually(lambda: pings(ns[OTHER.name], MOVING.ip))


async def test_the_guests_first_frame_on_the_destination_moves_its_traffic_before_the_switch(
    cloud: Cloud,
) -> None:
    ns = cloud.ns
    cloud.write(plumb(), INSTANCE)
    assert [type(e) for _, e in await cloud.converge()] == [MigrationPortPlumbed]
    assert await cloud.converge() == []  # no frame on host 2's tap yet: nothing said

    # The guest moves to host 2 and speaks (QEMU announces a migrated guest; here, its ARP).
    sh("ip", "link", "set", "eth0", "netns", ns[HOST_A], netns=ns[MOVING.name])
    plug_guest(ns[HOST_B], names.veth_peer(MOVING.tap), ns[MOVING.name], MOVING.mac,
               (MOVING.ip,))  # fmt: skip
    pings(ns[MOVING.name], THIRD.ip, wait=0.3)  # its first frames, whatever the answer
    started = time.monotonic()
    activated = MigrationPortActivated(flow_id=FLOW, host=HOST_B, source=HOST_A)
    assert await cloud.converge() == [(HOST_B, activated)]
    # Every host follows: host 1 unplugs it and forwards its MAC to host 2; host 2 binds it
    # but reports nothing before the controller assigns it the port.
    written = kinds(await cloud.converge())
    assert (HOST_A, PortUnbound.TYPE) in written
    assert (HOST_B, PortBound.TYPE) not in written
    assert await eventually_async(lambda: pings(ns[THIRD.name], MOVING.ip, wait=0.3), 5.0)
    reached = time.monotonic() - started
    print(f"activation -> first ping answered from host 1's guest: {reached:.3f} s")
    assert (MOVING.mac, HOSTS[HOST_B]) in await cloud.fdb(HOST_A)
    assert MOVING.tap not in cloud.links(HOST_A)

    # The switch: the controller's assignment agrees; host 2 reports the binding, answers.
    cloud.write(switch(), INSTANCE)
    cloud.write(PortHostAssigned(host=HOST_B), MOVING.port_id)
    assert (HOST_B, PortBound.TYPE) in kinds(await cloud.converge())
    switched = MigrationPortSwitched(flow_id=FLOW, step="switch_port", host=HOST_B)
    assert (HOST_B, switched) in await cloud.converge()
    assert pings(ns[THIRD.name], MOVING.ip)
