"""One contract for every NetworkDriver: the in-memory one, and the netlink/nftables one inside
a network namespace the test creates."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Iterator

import pytest
from tests.support.netns import links, namespaces, sh, unique

from virga_network.agent.core import names
from virga_network.agent.core.plumbing import (
    EdgePlumbing,
    FilterRule,
    FilterSet,
    NetworkPlumbing,
    PortFilter,
)
from virga_network.agent.drivers.base import DriverError, NetworkDriver
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.agent.drivers.netlink import NetlinkDriver

PREFIX = "vh4"
NET = NetworkPlumbing(
    network_id="net-1",
    vni=4242,
    bridge=names.bridge_name("net-1", PREFIX),
    vxlan=names.vxlan_name("net-1", PREFIX),
    flood=("192.0.2.2", "192.0.2.3"),
    fdb=(("02:00:00:00:00:02", "192.0.2.2"),),
)
VTEP = "192.0.2.1"
HOST = unique("c")
"""This run's host name: it ends the edges' namespace names, which are global."""
EDGE = EdgePlumbing(
    namespace=f"{names.edge_name('net-1', PREFIX)}-{HOST}",
    veth=names.edge_name("net-1", PREFIX),
    cidr="10.0.0.0/24",
    neighbours=(("10.0.0.5", "02:00:00:00:00:01"),),
)
EDGED = NetworkPlumbing(
    network_id=NET.network_id, vni=NET.vni, bridge=NET.bridge, vxlan=NET.vxlan, edge=EDGE
)
TAP = names.tap_name("port-1", PREFIX)
OTHER_TAP = names.tap_name("port-2", PREFIX)
SPEC = PortFilter(
    tap=TAP,
    mac="02:00:00:00:00:01",
    ips=("10.0.0.5", "fd00::5"),
    zone=4242,
    rules=(FilterRule(direction="egress"), FilterRule(direction="ingress", protocol="tcp")),
)


class DriverContract(abc.ABC):
    """Behaviour every driver must show; subclasses provide `driver`."""

    @pytest.fixture
    @abc.abstractmethod
    async def driver(self) -> AsyncIterator[NetworkDriver]:
        yield MemoryNetworkDriver()  # pragma: no cover - overridden

    async def test_a_network_is_a_bridge_with_its_vxlan_and_exact_forwarding(
        self, driver: NetworkDriver
    ) -> None:
        await driver.ensure_network(NET, VTEP)
        await driver.ensure_network(NET, VTEP)  # idempotent
        inventory = await driver.inventory()
        assert inventory.bridges == {NET.bridge}
        assert inventory.vxlans == {NET.vxlan}
        assert NET.vxlan in inventory.ports_of[NET.bridge]
        assert await driver.forwarding(NET.vxlan) == {
            ("00:00:00:00:00:00", "192.0.2.2"),
            ("00:00:00:00:00:00", "192.0.2.3"),
            ("02:00:00:00:00:02", "192.0.2.2"),
        }

    async def test_forwarding_follows_the_hosts_and_ports_that_come_and_go(
        self, driver: NetworkDriver
    ) -> None:
        await driver.ensure_network(NET, VTEP)
        moved = NetworkPlumbing(
            network_id=NET.network_id,
            vni=NET.vni,
            bridge=NET.bridge,
            vxlan=NET.vxlan,
            flood=("192.0.2.3",),
            fdb=(("02:00:00:00:00:02", "192.0.2.3"),),
        )
        await driver.ensure_network(moved, VTEP)
        assert await driver.forwarding(NET.vxlan) == {
            ("00:00:00:00:00:00", "192.0.2.3"),
            ("02:00:00:00:00:02", "192.0.2.3"),
        }

    async def test_a_port_is_a_tap_on_its_bridge(self, driver: NetworkDriver) -> None:
        await driver.ensure_network(NET, VTEP)
        await driver.ensure_port(TAP, NET.bridge)
        await driver.ensure_port(TAP, NET.bridge)
        inventory = await driver.inventory()
        assert inventory.taps == {TAP}
        assert inventory.ports_of[NET.bridge] == {TAP, NET.vxlan}

    async def test_a_port_needs_its_bridge(self, driver: NetworkDriver) -> None:
        with pytest.raises(DriverError):
            await driver.ensure_port(TAP, NET.bridge)

    async def test_a_vxlan_id_beyond_24_bits_is_refused(self, driver: NetworkDriver) -> None:
        bad = NetworkPlumbing(network_id="n", vni=1 << 24, bridge=NET.bridge, vxlan=NET.vxlan)
        with pytest.raises(DriverError):
            await driver.ensure_network(bad, VTEP)

    async def test_filters_are_replaced_as_a_whole(self, driver: NetworkDriver) -> None:
        await driver.ensure_network(NET, VTEP)
        await driver.ensure_port(TAP, NET.bridge)
        await driver.apply_filters(FilterSet(ports=(SPEC,), uplinks=((NET.vxlan, 4242),)))
        await driver.apply_filters(FilterSet(ports=(SPEC,), uplinks=((NET.vxlan, 4242),)))
        assert (await driver.inventory()).filtered == {TAP}
        other = PortFilter(tap=OTHER_TAP, mac="02:00:00:00:00:03", ips=("10.0.0.6",), zone=4242)
        await driver.apply_filters(FilterSet(ports=(SPEC, other), uplinks=((NET.vxlan, 4242),)))
        assert (await driver.inventory()).filtered == {TAP, OTHER_TAP}
        await driver.apply_filters(FilterSet(ports=(other,)))
        assert (await driver.inventory()).filtered == {OTHER_TAP}
        await driver.apply_filters(FilterSet())
        assert (await driver.inventory()).filtered == frozenset()

    async def test_an_edge_lives_with_its_network(self, driver: NetworkDriver) -> None:
        await driver.ensure_network(EDGED, VTEP)
        await driver.ensure_network(EDGED, VTEP)  # idempotent
        assert (await driver.inventory()).edges == {EDGE.veth}
        for _ in range(2):
            await driver.remove_network(NET.bridge, NET.vxlan)
        inventory = await driver.inventory()
        assert not inventory.edges
        assert not inventory.bridges

    async def test_removing_is_idempotent_and_leaves_nothing(self, driver: NetworkDriver) -> None:
        await driver.ensure_network(NET, VTEP)
        await driver.ensure_port(TAP, NET.bridge)
        for _ in range(2):
            await driver.remove_port(TAP)
            await driver.remove_network(NET.bridge, NET.vxlan)
        inventory = await driver.inventory()
        assert not inventory.bridges
        assert not inventory.vxlans
        assert not inventory.taps
        assert await driver.forwarding(NET.vxlan) == frozenset()


class TestMemoryDriver(DriverContract):
    @pytest.fixture
    async def driver(self) -> AsyncIterator[NetworkDriver]:
        yield MemoryNetworkDriver(prefix=PREFIX)  # noqa: PT022 - the contract's fixture is a generator


@pytest.fixture
def host_ns() -> Iterator[str]:
    with namespaces([unique("vh4c")]) as (name,):
        # An underlay address for the VTEP, as on a real host.
        # (No dummy interfaces in every kernel: one end of a veth pair serves.)
        sh("ip", "link", "add", "vh4under", "type", "veth", "peer", "vh4under1", netns=name)
        sh("ip", "addr", "add", f"{VTEP}/24", "dev", "vh4under", netns=name)
        sh("ip", "link", "set", "vh4under", "up", netns=name)
        yield name


class TestNetlinkDriver(DriverContract):
    @pytest.fixture
    async def driver(self, host_ns: str) -> AsyncIterator[NetworkDriver]:
        driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=host_ns, host=HOST)
        await driver.prepare()
        try:
            yield driver
        finally:
            await driver.close()
            sh("ip", "netns", "del", EDGE.namespace, check=False)  # a failed test's edge

    async def test_an_edge_holds_its_address_route_and_exactly_its_neighbours(
        self, driver: NetworkDriver, host_ns: str
    ) -> None:
        await driver.ensure_network(EDGED, VTEP)
        peer = names.veth_peer(EDGE.veth)
        assert "169.254.169.254/32" in sh("ip", "addr", "show", peer, netns=EDGE.namespace).stdout
        route = sh("ip", "route", "show", "10.0.0.0/24", netns=EDGE.namespace).stdout
        assert f"dev {peer}" in route
        assert "src 169.254.169.254" in route
        assert NET.bridge in sh("ip", "link", "show", EDGE.veth, netns=host_ns).stdout
        moved = EdgePlumbing(
            EDGE.namespace, EDGE.veth, EDGE.cidr, (("10.0.0.6", "02:00:00:00:00:06"),)
        )
        await driver.ensure_network(
            NetworkPlumbing(NET.network_id, NET.vni, NET.bridge, NET.vxlan, edge=moved), VTEP
        )
        neighbours = sh("ip", "neigh", "show", "dev", peer, netns=EDGE.namespace).stdout
        assert "10.0.0.6 lladdr 02:00:00:00:00:06 PERMANENT" in neighbours
        assert "10.0.0.5" not in neighbours
        await driver.remove_network(NET.bridge, NET.vxlan)
        assert EDGE.namespace not in sh("ip", "netns", "list").stdout

    async def test_interfaces_virga_did_not_name_are_left_alone(
        self, driver: NetworkDriver, host_ns: str
    ) -> None:
        sh("ip", "link", "add", "vh4other", "type", "bridge", netns=host_ns)
        await driver.ensure_network(NET, VTEP)
        await driver.remove_network(NET.bridge, NET.vxlan)
        inventory = await driver.inventory()
        assert "vh4other" not in inventory.bridges
        assert {"vh4other", "vh4under"} <= links(host_ns)

    async def test_a_vxlan_with_another_id_is_replaced(
        self, driver: NetworkDriver, host_ns: str
    ) -> None:
        sh("ip", "link", "add", NET.vxlan, "type", "vxlan", "id", "7", "dstport", "4789",
           netns=host_ns)  # fmt: skip
        await driver.ensure_network(NET, VTEP)
        detail = sh("ip", "-d", "link", "show", NET.vxlan, netns=host_ns).stdout
        assert "vxlan id 4242" in detail
        assert "nolearning" in detail

    async def test_a_qemu_tap_is_a_persistent_tap_device(self, host_ns: str) -> None:
        driver = NetlinkDriver(prefix=PREFIX, tap_kind="tap", netns=host_ns)
        try:
            await driver.ensure_network(NET, VTEP)
            await driver.ensure_port(TAP, NET.bridge)
            await driver.ensure_port(TAP, NET.bridge)
            assert (await driver.inventory()).ports_of[NET.bridge] == {TAP, NET.vxlan}
        finally:
            await driver.close()
        detail = sh("ip", "-d", "link", "show", TAP, netns=host_ns).stdout
        assert "tun type tap" in detail

    async def test_a_port_asked_as_a_tap_is_one_whatever_the_default(
        self, driver: NetworkDriver, host_ns: str
    ) -> None:
        # The agent asks for a tap for an instance's port (QEMU opens it) even where its
        # other ports are veths (operators' and tests' guests in namespaces).
        await driver.ensure_network(NET, VTEP)
        await driver.ensure_port(TAP, NET.bridge, kind="tap")
        await driver.ensure_port(OTHER_TAP, NET.bridge)
        assert "tun type tap" in sh("ip", "-d", "link", "show", TAP, netns=host_ns).stdout
        assert names.veth_peer(OTHER_TAP) in links(host_ns)
        assert names.veth_peer(TAP) not in links(host_ns)
