"""Convergence over the in-memory driver: binds, reports, cleans up, and does nothing twice."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from virga_events.catalog.network import (
    NetworkAgentRegistered,
    PortBindingFailed,
    PortBound,
    PortUnbound,
)
from virga_network.agent.core import names
from virga_network.agent.core.plan import HostPlan, PortPlan, Unbind, zone
from virga_network.agent.core.plumbing import EdgePlumbing, FilterSet, NetworkPlumbing, PortFilter
from virga_network.agent.drivers.base import DriverError
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge, Register

HOST, VTEP = "h1", "192.0.2.1"
NET = NetworkPlumbing(
    network_id="n-1",
    vni=1001,
    bridge=names.bridge_name("n-1"),
    vxlan=names.vxlan_name("n-1"),
    flood=("192.0.2.2",),
)


def port(port_id: str, report: bool = True) -> PortPlan:
    tap = names.tap_name(port_id)
    return PortPlan(
        port_id=port_id,
        tenant_id="t-1",
        network_id="n-1",
        bridge=NET.bridge,
        filter=PortFilter(tap=tap, mac="02:00:00:00:00:05", ips=("10.0.0.5",), zone=zone(1001)),
        instance_id="i-1",
        report=report,
    )


def host(*ports: PortPlan, unbind: tuple[Unbind, ...] = ()) -> HostPlan:
    networks = (NET,) if ports else ()
    return HostPlan(HOST, VTEP, networks, ports, unbind)


async def test_a_port_is_plugged_filtered_and_reported_bound() -> None:
    driver = MemoryNetworkDriver()
    emits = await AgentEffects(driver).converge(Converge(host(port("p-1"))))
    tap = names.tap_name("p-1")
    assert driver.taps == {tap: NET.bridge}
    assert driver.vxlans[NET.vxlan].forwarding == {("00:00:00:00:00:00", "192.0.2.2")}
    assert [p.tap for p in driver.filters.ports] == [tap]
    assert driver.filters.uplinks == ((NET.vxlan, zone(1001)),)
    (emit,) = emits
    assert emit.aggregate_id == "p-1"
    assert emit.payload == PortBound(
        host=HOST, network_id="n-1", tap=tap, mac="02:00:00:00:00:05", ips=("10.0.0.5",),
        instance_id="i-1",
    )  # fmt: skip


async def test_the_same_plan_twice_touches_nothing_and_a_report_alone_changes_nothing() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver)
    await effects.converge(Converge(host(port("p-1"))))
    calls = driver.calls
    assert await effects.converge(Converge(host(port("p-1")))) == []
    assert await effects.converge(Converge(host(port("p-1", report=False)))) == []
    assert driver.calls == calls


async def test_a_failed_port_is_reported_and_leaves_no_tap() -> None:
    driver = MemoryNetworkDriver(fail_ports={names.tap_name("p-2")})
    emits = await AgentEffects(driver).converge(Converge(host(port("p-1"), port("p-2"))))
    assert {type(e.payload) for e in emits} == {PortBound, PortBindingFailed}
    failed = next(e for e in emits if isinstance(e.payload, PortBindingFailed))
    assert failed.aggregate_id == "p-2"
    assert isinstance(failed.payload, PortBindingFailed)
    assert "cannot make" in failed.payload.reason
    assert set(driver.taps) == {names.tap_name("p-1")}


async def test_after_a_start_what_the_plan_does_not_want_is_removed() -> None:
    driver = MemoryNetworkDriver()
    await AgentEffects(driver).converge(Converge(host(port("p-1"), port("p-2"))))
    stray = "vgt0123456789"
    driver.taps[stray] = NET.bridge
    driver.taps["eth0"] = ""  # not Virga's: never touched
    # A new agent (a restart): it lists the host first.
    emits = await AgentEffects(driver).converge(
        Converge(host(port("p-1", report=False), unbind=(Unbind("p-2", "t-1"),)))
    )
    assert set(driver.taps) == {names.tap_name("p-1"), "eth0"}
    assert [(e.aggregate_id, e.payload) for e in emits] == [("p-2", PortUnbound(host=HOST))]


async def test_the_last_port_gone_takes_its_network_with_it() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver)
    await effects.converge(Converge(host(port("p-1"))))
    await effects.converge(Converge(host(unbind=(Unbind("p-1", "t-1"),))))
    assert (driver.taps, driver.bridges, driver.vxlans) == ({}, set(), {})
    assert driver.filters == FilterSet()


class BrokenFilters(MemoryNetworkDriver):
    async def apply_filters(self, filters: FilterSet) -> None:
        raise DriverError("nft: no such table")


async def test_a_port_whose_filters_fail_is_never_plugged_in() -> None:
    driver = BrokenFilters()
    emits = await AgentEffects(driver).converge(Converge(host(port("p-1"))))
    (emit,) = emits
    assert isinstance(emit.payload, PortBindingFailed)
    assert "filters failed" in emit.payload.reason
    assert driver.taps == {}


async def test_register_prepares_the_host_and_announces_only_when_asked() -> None:
    driver = MemoryNetworkDriver()
    effects = AgentEffects(driver)
    (emit,) = await effects.register(Register(HOST, VTEP))
    assert emit.payload == NetworkAgentRegistered(vtep_ip=VTEP)
    assert await effects.register(Register(HOST, VTEP, announce=False)) == []
    assert driver.calls == 2


class StubbornBridge(MemoryNetworkDriver):
    async def remove_network(self, bridge: str, vxlan: str) -> None:
        self.calls += 1
        raise DriverError("device or resource busy")


async def test_a_host_that_keeps_refusing_is_retried_after_a_pause_not_every_tick() -> None:
    driver = StubbornBridge()
    effects = AgentEffects(driver, retry_seconds=0.2)
    await effects.converge(Converge(host(port("p-1"))))
    gone = host(unbind=(Unbind("p-1", "t-1"),))
    await effects.converge(Converge(gone))  # the bridge will not go
    calls = driver.calls
    assert await effects.converge(Converge(gone)) == []
    assert driver.calls == calls  # the same plan right away: nothing tried
    await asyncio.sleep(0.25)
    await effects.converge(Converge(gone))
    assert driver.calls > calls


async def test_edges_are_served_as_the_plan_says_and_an_orphaned_edge_is_removed() -> None:
    edge = EdgePlumbing("vgeX-h1", names.edge_name("n-1"), "10.0.0.0/24", (("10.0.0.5", "m"),))
    edged = HostPlan(HOST, VTEP, (replace(NET, edge=edge),), (port("p-1"),), ())
    served: list[list[tuple[str, EdgePlumbing]]] = []

    async def serve(edges: list[tuple[str, EdgePlumbing]]) -> bool:
        served.append(edges)
        return True

    driver = MemoryNetworkDriver()
    await AgentEffects(driver, edges=serve).converge(Converge(edged))
    assert driver.edges == {NET.bridge: edge}
    assert served == [[("n-1", edge)]]
    assert (NET.vxlan, zone(1001)) in driver.filters.uplinks
    assert (edge.veth, zone(1001)) in driver.filters.uplinks  # the edge's zone is its network's
    # A crash left the edge of a network whose bridge is gone: a restart removes it.
    stray = names.edge_name("n-2")
    driver.edges[names.bridge_name("n-2")] = replace(edge, veth=stray)
    await AgentEffects(driver, edges=serve).converge(Converge(edged))
    assert driver.edges == {NET.bridge: edge}
    await AgentEffects(driver, edges=serve).converge(Converge(host()))
    assert driver.edges == {}
    assert served[-1] == []
