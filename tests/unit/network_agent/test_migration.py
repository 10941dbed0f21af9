"""A live migration's port steps in the agent (`core.migration`): what each host plans and
answers for plumb (unbound on the destination), switch_port and the unplumb compensation."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from virga_events import Envelope, Event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.l3 import (
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpUnplumbed,
)
from virga_events.catalog.network import (
    MigrationPortPlumbed,
    MigrationPortPlumbingFailed,
    MigrationPortSwitched,
    NetworkAgentRegistered,
    PortAllocated,
    PortBound,
    PortHostAssigned,
    PortUnbound,
)
from virga_events.catalog.scheduler import (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import names
from virga_network.agent.core.decide import decide
from virga_network.agent.core.fold import evolve
from virga_network.agent.core.migration import MigrationAnswer
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.plan import HostPlan, host_plan
from virga_network.agent.core.snapshot import restore, snapshot
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge
from virga_runtime.service import Emit

from .test_l3_core import DEFAULT, TENANT, associate, base, ev

SOURCE, DESTINATION = "h1", "h2"
VTEPS = {SOURCE: "192.0.2.1", DESTINATION: "192.0.2.2"}
INSTANCE, PORT, FLOW = "i-1", "port-i-1", "flow-1"
MAC, IP = "02:00:00:00:00:05", "10.0.0.5"
TAP = names.tap_name(PORT)
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)


def running() -> list[Envelope]:
    """The instance's port bound on the source, with a floating IP, both hosts registered."""
    allocated = PortAllocated(
        network_id="n-1", mac=MAC, ips=(IP,), security_groups=(DEFAULT,), instance_id=INSTANCE
    )
    bound = PortBound(
        host=SOURCE, network_id="n-1", tap=TAP, mac=MAC, ips=(IP,), instance_id=INSTANCE
    )
    return [
        *(ev(NetworkAgentRegistered(vtep_ip=vtep), host, None) for host, vtep in VTEPS.items()),
        *base(),
        ev(allocated, PORT),
        ev(PortHostAssigned(host=SOURCE), PORT),
        ev(bound, PORT),
        associate(PORT, IP),
    ]


def plumb() -> Envelope:
    return ev(MigrationPortPlumbRequested(flow_id=FLOW, step="plumb", host=DESTINATION), INSTANCE)


def switch() -> Envelope:
    asked = MigrationPortSwitchRequested(
        flow_id=FLOW, step="switch_port", host=DESTINATION, source=SOURCE
    )
    return ev(asked, INSTANCE)


def answered(emits: Sequence[Emit]) -> list[Envelope]:
    """What a host's convergence wrote, as the log holds it."""
    return [ev(e.payload, e.aggregate_id, e.tenant_id) for e in emits]


class Host:
    """One host's fold and its convergence over the in-memory driver."""

    def __init__(self, host: str, events: Sequence[Envelope], fail: str = "") -> None:
        self.state = NetworkAgentState(host=host)
        self.read(events)
        self.driver = MemoryNetworkDriver(fail_ports={fail} if fail else set())
        self.effects = AgentEffects(self.driver)

    def read(self, events: Sequence[Envelope]) -> None:
        for envelope in events:
            self.state = evolve(self.state, envelope)

    def plan(self) -> HostPlan:
        return host_plan(self.state, VTEPS.get(self.state.host, "192.0.2.3"), names.DEFAULT_PREFIX)

    async def converge(self) -> list[Event]:
        return [e.payload for e in await self.effects.converge(Converge(self.plan()))]


def test_the_destination_plumbs_the_port_unbound_and_the_binding_stays_on_the_source() -> None:
    before = running()
    events = [*before, plumb()]
    destination = Host(DESTINATION, events).plan()
    (port,) = destination.ports
    assert (port.port_id, port.filter.tap, port.prepared, port.report) == (PORT, TAP, True, False)
    assert (port.filter.mac, port.filter.ips) == (MAC, (IP,))
    (network,) = destination.networks
    assert (MAC, VTEPS[SOURCE]) in network.fdb  # its frames still go to the source
    # No floating IP here: its NAT and ARP answer stay where the port is bound.
    assert all(router.floating == () for router in destination.routers)
    assert destination.confirm == ()
    assert destination.migrations == (MigrationAnswer(FLOW, INSTANCE, TENANT, "plumbed", (PORT,)),)
    # Its edge here already knows it (DHCP, metadata) for when the guest arrives.
    edged = host_plan(Host(DESTINATION, events).state, VTEPS[DESTINATION], names.DEFAULT_PREFIX,
                      edges=True)  # fmt: skip
    (network,) = edged.networks
    assert network.edge is not None
    assert (IP, MAC) in network.edge.neighbours
    # The source plans what it planned before; a third host nothing.
    source = Host(SOURCE, events).plan()
    assert source == Host(SOURCE, before).plan()
    assert Host("h3", events).plan().ports == ()


async def test_plumbed_is_answered_once_after_the_tap_is_made() -> None:
    destination = Host(DESTINATION, [*running(), plumb()])
    emits = await destination.effects.converge(Converge(destination.plan()))
    assert [e.payload for e in emits] == [
        MigrationPortPlumbed(flow_id=FLOW, step="plumb", host=DESTINATION)
    ]
    assert emits[0].aggregate_id == INSTANCE
    assert destination.driver.taps == {TAP: names.bridge_name("n-1")}
    assert await destination.converge() == []  # not repeated while the log has yet to say so
    destination.read(answered(emits))
    assert destination.plan().migrations == ()
    assert await destination.converge() == []
    assert TAP in destination.driver.taps  # still plumbed for the guest to come


async def test_a_port_that_cannot_be_made_fails_the_plumbing_with_its_reason() -> None:
    destination = Host(DESTINATION, [*running(), plumb()], fail=TAP)
    (failed,) = await destination.converge()
    assert isinstance(failed, MigrationPortPlumbingFailed)
    assert (failed.flow_id, failed.host) == (FLOW, DESTINATION)
    assert PORT in failed.reason
    # Not a binding failure: the port is bound on the source, untouched.
    assert TAP not in destination.driver.taps


async def test_unplumb_removes_what_plumb_made_unless_the_port_is_bound_there() -> None:
    destination = Host(DESTINATION, [*running(), plumb()])
    destination.read(answered(await destination.effects.converge(Converge(destination.plan()))))
    assert TAP in destination.driver.taps
    unplumb = MigrationPortUnplumbRequested(flow_id=FLOW, host=DESTINATION)
    destination.read([ev(unplumb, INSTANCE)])
    assert destination.plan().ports == ()
    assert await destination.converge() == []
    assert destination.driver.taps == {}
    assert destination.driver.bridges == set()  # its network had nothing else here
    # A port the log assigned there meanwhile stays: it is bound there, not plumbed for us.
    bound_there = Host(DESTINATION, [*running(), plumb(), ev(PortHostAssigned(host=DESTINATION),
                                                               PORT)])  # fmt: skip
    bound_there.read([ev(unplumb, INSTANCE)])
    (port,) = bound_there.plan().ports
    assert (port.prepared, port.report) == (False, True)


async def test_the_switch_binds_on_the_destination_unbinds_the_source_and_is_answered() -> None:
    # A neighbour on the source keeps the network there.
    neighbour = PortAllocated(
        network_id="n-1", mac="02:00:00:00:00:07", ips=("10.0.0.7",), security_groups=(DEFAULT,)
    )
    events = [*running(), ev(neighbour, "p-7"), ev(PortHostAssigned(host=SOURCE), "p-7"), plumb()]
    source, destination = Host(SOURCE, events), Host(DESTINATION, events)
    for host in (source, destination):
        written = answered(await host.effects.converge(Converge(host.plan())))
        source.read(written)
        destination.read(written)
    # The controller's decision on the switch request (see tests/unit/network): the port's
    # host, and its floating IP's association naming that host.
    moved = [
        switch(),
        ev(PortHostAssigned(host=DESTINATION), PORT),
        ev(FloatingIpAssociationAccepted(port_id=PORT, network_id="n-1", fixed_ip=IP,
                                         host=DESTINATION), "f-1"),
    ]  # fmt: skip
    source.read(moved)
    destination.read(moved)
    calls = destination.driver.calls
    bound = await destination.effects.converge(Converge(destination.plan()))
    # Bound, and its floating IP confirmed here (NATed, announced) in the same convergence.
    assert {type(e.payload) for e in bound} == {PortBound, FloatingIpAssociated}
    assert destination.driver.calls - calls < 10  # its tap is kept, not remade
    unbound = await source.effects.converge(Converge(source.plan()))
    # Unplugged, and its floating IP reported NATed here no more (as a re-association).
    assert {(type(e.payload), e.aggregate_id) for e in unbound} == {
        (PortUnbound, PORT),
        (FloatingIpUnplumbed, "f-1"),
    }
    assert TAP not in source.driver.taps
    # Not answered before its PortBound is in the log; then once.
    for host in (source, destination):
        host.read(answered(bound) + answered(unbound))
    emits = await destination.effects.converge(Converge(destination.plan()))
    switched = [e.payload for e in emits if isinstance(e.payload, MigrationPortSwitched)]
    assert switched == [MigrationPortSwitched(flow_id=FLOW, step="switch_port", host=DESTINATION)]
    # Forwarding followed: the source sends the port's frames to the destination.
    (network,) = source.plan().networks
    assert (MAC, VTEPS[DESTINATION]) in network.fdb
    (network,) = destination.plan().networks
    assert all(mac != MAC for mac, _ in network.fdb)
    (router,) = destination.plan().routers
    assert [nat.floating_ip for nat in router.floating] == ["203.0.113.100"]
    assert all(router.floating == () for router in source.plan().routers)
    # A re-sent request (the flow's retry) is answered again.
    destination.read([*answered(emits), switch()])
    again = await destination.converge()
    assert [e for e in again if isinstance(e, MigrationPortSwitched)] == switched
    destination.read([ev(e, INSTANCE) for e in again])
    assert destination.plan().migrations == ()


def test_an_ended_flow_is_forgotten_and_its_late_requests_change_nothing() -> None:
    done = ev(FlowCompleted(subject=INSTANCE), FLOW)
    destination = Host(DESTINATION, [*running(), plumb(), done])
    assert destination.state.migrations == {}
    assert destination.plan().ports == ()
    late = Host(DESTINATION, [*running(), done, plumb()])
    assert (late.state.migrations, late.plan().ports) == ({}, ())
    # A flow stuck after its pivot keeps its plumbing: the guest may run there.
    stuck = ev(FlowFailed(subject=INSTANCE, reason="switch failed", stuck=True), FLOW)
    kept = Host(DESTINATION, [*running(), plumb(), stuck])
    assert [p.port_id for p in kept.plan().ports] == [PORT]


def test_requests_converge_at_once_on_their_host_only_and_survive_a_snapshot() -> None:
    config = NetworkAgentConfig(host=DESTINATION, vtep_ip=VTEPS[DESTINATION])
    state = Host(DESTINATION, [*running(), plumb()]).state
    assert len(decide(config, state, plumb())) == 1
    assert len(decide(config, state, switch())) == 1
    elsewhere = MigrationPortPlumbRequested(flow_id="flow-2", step="plumb", host="h3")
    assert decide(config, state, ev(elsewhere, "i-2")) == ()
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state
    assert state.migrations[FLOW].plumb_requests == 1


def test_answers_are_counted_whatever_order_the_two_topics_are_folded_in() -> None:
    plumbed = ev(MigrationPortPlumbed(flow_id=FLOW, step="plumb", host=DESTINATION), INSTANCE)
    first = Host(DESTINATION, [*running(), plumbed, plumb()]).plan()
    assert first.migrations == ()
    assert [p.port_id for p in first.ports] == [PORT]  # still plumbed for the guest


async def test_a_restarted_destination_keeps_the_plumbing_and_answers_nothing_twice() -> None:
    destination = Host(DESTINATION, [*running(), plumb()])
    destination.read(answered(await destination.effects.converge(Converge(destination.plan()))))
    # Restarted: rebuilt from a snapshot, a new effect handler that lists the host first.
    destination.state = restore(orjson.loads(orjson.dumps(snapshot(destination.state))))
    destination.effects = AgentEffects(destination.driver)
    assert await destination.converge() == []
    assert TAP in destination.driver.taps


def test_plumbed_waits_for_the_port_of_an_instance_that_asked_for_a_network() -> None:
    requested = InstanceRequested(name="web", flavor=TINY, network="n-1")
    early = [*base(), ev(requested, INSTANCE), plumb()]  # its PortAllocated not read yet
    assert Host(DESTINATION, early).plan().migrations == ()
    # Without a network it has no port: nothing to plumb, answered at once.
    alone = InstanceRequested(name="web", flavor=TINY)
    (answer,) = Host(DESTINATION, [*base(), ev(alone, INSTANCE), plumb()]).plan().migrations
    assert (answer.kind, answer.ports) == ("plumbed", ())
