"""A migration's switch request moves the port's network on every host at once
(`core.migration.moved`), before the controller's PortHostAssigned and the destination's
PortBound: the destination binds, the source unplugs, a third host forwards the guest's MAC to
the destination and takes it (only its MAC and addresses) only from there. The controller
stays the owner: `MigrationPortSwitched` waits for its assignment, and a later one wins."""

from __future__ import annotations

from virga_events import Envelope
from virga_events.catalog.flows import FlowFailed
from virga_events.catalog.network import (
    MigrationPortActivated,
    NetworkAgentRegistered,
    PortAllocated,
    PortBound,
    PortHostAssigned,
    PortUnbound,
)
from virga_events.catalog.scheduler import MigrationPortSwitchRequested
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core.decide import decide
from virga_network.agent.core.plan import HostPlan
from virga_network.agent.core.plumbing import RemotePort
from virga_network.agent.effects.intents import Converge

from .test_l3_core import DEFAULT, ev
from .test_migration import (
    DESTINATION,
    FLOW,
    INSTANCE,
    IP,
    MAC,
    PORT,
    SOURCE,
    TAP,
    VTEPS,
    Host,
    answered,
    plumb,
    running,
    switch,
)

THIRD = "h3"
THIRD_VTEP = "192.0.2.3"


def with_third() -> list[Envelope]:
    """`running()` and a third host with a port of its own on the network."""
    mine = PortAllocated(
        network_id="n-1", mac="02:00:00:00:00:09", ips=("10.0.0.9",), security_groups=(DEFAULT,)
    )
    return [
        *running(),
        ev(NetworkAgentRegistered(vtep_ip=THIRD_VTEP), THIRD, None),
        ev(mine, "p-9"),
        ev(PortHostAssigned(host=THIRD), "p-9"),
        plumb(),
    ]


def guest(plan: HostPlan) -> tuple[set[str], set[RemotePort]]:
    """Where a host sends the guest's MAC, and whence it takes the guest's frames."""
    (network,) = plan.networks
    return {vtep for mac, vtep in network.fdb if mac == MAC}, {
        r for r in network.remotes if r.mac == MAC
    }


def test_every_host_follows_the_switch_request_before_the_controller_answers() -> None:
    events = [*with_third(), switch()]
    destination = Host(DESTINATION, events).plan()
    (port,) = destination.ports
    # Bound here, not reported before the controller assigns it here.
    assert (port.port_id, port.prepared, port.report) == (PORT, False, False)
    assert destination.arrivals == ()  # switched: nothing left to watch for
    source = Host(SOURCE, events).plan()
    assert [u.port_id for u in source.unbind] == [PORT]
    assert all(p.port_id != PORT for p in source.ports)
    destination_only = ({VTEPS[DESTINATION]}, {RemotePort(MAC, VTEPS[DESTINATION], (IP,))})
    assert source.networks == ()  # nothing left of the network there: nothing to forward
    assert guest(Host(THIRD, events).plan()) == destination_only
    # Before the request, the same hosts forward to the source only.
    before = with_third()
    assert guest(Host(THIRD, before).plan()) == (
        {VTEPS[SOURCE]},
        {RemotePort(MAC, VTEPS[SOURCE], (IP,))},
    )
    assert [p.prepared for p in Host(DESTINATION, before).plan().ports] == [True]


def test_a_failed_migration_leaves_the_source_bound_and_forwarded_to() -> None:
    failed = ev(FlowFailed(subject=INSTANCE, reason="migrate failed"), FLOW)
    events = [*with_third(), failed]
    assert Host(DESTINATION, events).plan().ports == ()
    source = Host(SOURCE, events).plan()
    assert [p.port_id for p in source.ports if p.instance_id == INSTANCE] == [PORT]
    assert source.unbind == ()
    assert guest(Host(THIRD, events).plan())[0] == {VTEPS[SOURCE]}


async def test_port_bound_and_switched_wait_for_the_controllers_assignment() -> None:
    destination = Host(DESTINATION, [*with_third(), switch()])
    written = answered(await destination.effects.converge(Converge(destination.plan())))
    assert [e for e in written if e.aggregate_id == PORT] == []
    assert TAP in destination.driver.taps
    assert "switched" not in [a.kind for a in destination.plan().migrations]
    destination.read([ev(PortHostAssigned(host=DESTINATION), PORT)])
    written = answered(await destination.effects.converge(Converge(destination.plan())))
    assert [type(e.payload) for e in written if e.aggregate_id == PORT] == [PortBound]
    destination.read(written)
    assert "switched" in [a.kind for a in destination.plan().migrations]


def test_the_controllers_later_assignment_wins() -> None:
    events = [*with_third(), switch(), ev(PortHostAssigned(host=THIRD), PORT)]
    # Not bound on the destination (only its plumbing kept while the flow runs).
    assert [(p.prepared, p.report) for p in Host(DESTINATION, events).plan().ports] == [
        (True, False)
    ]
    assert [p.port_id for p in Host(THIRD, events).plan().ports if p.port_id == PORT] == [PORT]


def test_a_later_migration_back_supersedes_an_earlier_one_not_ended_here() -> None:
    back = MigrationPortSwitchRequested(
        flow_id="flow-2", step="switch_port", host=SOURCE, source=DESTINATION
    )
    bound_there = PortBound(
        host=DESTINATION, network_id="n-1", tap="t", mac=MAC, ips=(IP,), instance_id=INSTANCE
    )
    there = [*with_third(), switch(), ev(PortHostAssigned(host=DESTINATION), PORT)]
    there += [ev(bound_there, PORT), ev(PortUnbound(host=SOURCE), PORT)]
    assert guest(Host(THIRD, there).plan())[0] == {VTEPS[DESTINATION]}
    # The first flow's end not folded yet: the second switch is where the guest is.
    moving_back = [*there, ev(back, INSTANCE)]
    assert guest(Host(THIRD, moving_back).plan())[0] == {VTEPS[SOURCE]}
    # Once the controller assigns it back to the first flow's source, it stays there.
    back_home = [*moving_back, ev(PortHostAssigned(host=SOURCE), PORT)]
    assert guest(Host(THIRD, back_home).plan())[0] == {VTEPS[SOURCE]}
    assert [p.prepared for p in Host(DESTINATION, back_home).plan().ports] == [True]


def test_a_switch_request_converges_every_host_at_once() -> None:
    for host in (SOURCE, DESTINATION, THIRD):
        config = NetworkAgentConfig(host=host, vtep_ip=VTEPS.get(host, THIRD_VTEP))
        state = Host(host, [*with_third(), switch()]).state
        assert len(decide(config, state, switch())) == 1


# -- activation: the guest's first frame on the destination -----------------------------------


def activated(host: str = DESTINATION) -> Envelope:
    return ev(MigrationPortActivated(flow_id=FLOW, host=host, source=SOURCE), INSTANCE)


async def test_the_destination_activates_at_the_guests_first_frame_once() -> None:
    destination = Host(DESTINATION, with_third())
    destination.read(answered(await destination.effects.converge(Converge(destination.plan()))))
    (arrival,) = destination.plan().arrivals
    assert (arrival.flow_id, arrival.taps) == (FLOW, (TAP,))
    assert await destination.converge() == []  # the incoming guest, paused, sends nothing
    destination.driver.frames[TAP] = 1  # QEMU announces the guest's MAC: it runs here
    said = await destination.converge()
    assert said == [MigrationPortActivated(flow_id=FLOW, host=DESTINATION, source=SOURCE)]
    assert await destination.converge() == []  # said once, until the log brings it back
    destination.read([activated()])
    plan = destination.plan()
    assert plan.arrivals == ()
    assert [(p.prepared, p.report) for p in plan.ports if p.port_id == PORT] == [(False, False)]


def test_every_host_follows_the_activation_before_any_switch() -> None:
    events = [*with_third(), activated()]
    source = Host(SOURCE, events).plan()
    assert [u.port_id for u in source.unbind] == [PORT]  # unplugged: the guest left
    third = Host(THIRD, events).plan()
    assert guest(third) == ({VTEPS[DESTINATION]}, {RemotePort(MAC, VTEPS[DESTINATION], (IP,))})
    # The controller's assignment then agrees; nothing moves again.
    agreed = [*events, switch(), ev(PortHostAssigned(host=DESTINATION), PORT)]
    assert guest(Host(THIRD, agreed).plan()) == guest(third)


def test_only_the_flows_destination_activates_whatever_the_folding_order() -> None:
    forged = [*with_third(), activated(THIRD)]
    assert guest(Host(SOURCE, forged).plan())[0] == set()  # bound there still: local
    assert guest(Host(THIRD, forged).plan())[0] == {VTEPS[SOURCE]}
    # The activation folded before the plumb request (two topics): heeded all the same.
    early = with_third()
    early.insert(len(early) - 1, activated())  # before plumb(), the last
    assert guest(Host(THIRD, early).plan())[0] == {VTEPS[DESTINATION]}


def test_another_hosts_activation_after_the_destinations_changes_nothing() -> None:
    """A host that was not asked to plumb cannot undo the destination's activation by writing
    its own after it (the activation was one field, the last writer's)."""
    events = [*with_third(), activated(), activated(THIRD)]
    assert guest(Host(THIRD, events).plan())[0] == {VTEPS[DESTINATION]}
    assert [u.port_id for u in Host(SOURCE, events).plan().unbind] == [PORT]


async def test_a_migration_that_fails_before_the_guest_ran_there_leaves_the_source_bound() -> None:
    destination = Host(DESTINATION, with_third())
    destination.read(answered(await destination.effects.converge(Converge(destination.plan()))))
    failed = ev(FlowFailed(subject=INSTANCE, reason="migrate failed"), FLOW)
    destination.read([failed])
    destination.driver.frames[TAP] = 1
    assert await destination.converge() == []  # nothing watched any more: nothing said
    assert TAP not in destination.driver.taps


def test_after_an_activation_the_controllers_assignment_elsewhere_wins() -> None:
    """A flow stuck after the guest moved keeps its record: the controller moving the port on
    (an evacuation's assignment) is followed all the same."""
    stuck = ev(FlowFailed(subject=INSTANCE, reason="switch failed", stuck=True), FLOW)
    events = [*with_third(), activated(), stuck]
    assert guest(Host(THIRD, events).plan())[0] == {VTEPS[DESTINATION]}
    elsewhere = [*events, ev(PortHostAssigned(host=THIRD), PORT)]
    assert [p.report for p in Host(THIRD, elsewhere).plan().ports if p.port_id == PORT] == [True]
    assert [(p.prepared, p.report) for p in Host(DESTINATION, elsewhere).plan().ports] == [
        (True, False)
    ]
