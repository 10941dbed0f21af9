"""The network controller's part of a live migration: at the switch, it moves the instance's
port to the destination (it is the one owner of a port's host), and its floating IP with it."""

from __future__ import annotations

from tests.unit.network.test_controller import TINY, Controller, scheduled
from tests.unit.network.test_controller_l3 import external, fip, routed

from virga_events.catalog import l3
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.network import PortHostAssigned, instance_port_id
from virga_events.catalog.scheduler import (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_network.core.fold import evolve
from virga_network.core.model import NetworkState
from virga_network.core.snapshot import restore, snapshot


def switch(host: str = "hv-2", source: str = "hv-1") -> MigrationPortSwitchRequested:
    return MigrationPortSwitchRequested(flow_id="f-1", step="switch_port", host=host, source=source)


def migrating() -> tuple[Controller, str]:
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/24")
    c.input(InstanceRequested(name="web", flavor=TINY, network=network_id), "i-1")
    c.input(scheduled("hv-1"), "i-1")
    routed(c, network_id)
    fip(c, "fip-1")
    c.input(l3.FloatingIpAssociationRequested(port_id=instance_port_id("i-1")), "fip-1")
    return c, network_id


def test_the_switch_moves_the_port_and_its_floating_ip_once() -> None:
    c, network_id = migrating()
    port_id = instance_port_id("i-1")
    # Plumbing on the destination is the agents' business: the binding stays where it is.
    assert c.input(MigrationPortPlumbRequested(flow_id="f-1", step="plumb", host="hv-2"),
                   "i-1") == []  # fmt: skip
    assert c.input(MigrationPortUnplumbRequested(flow_id="f-1", host="hv-2"), "i-1") == []
    assert c.state.ports[port_id].host == "hv-1"
    assert c.input(switch(), "i-1") == [
        PortHostAssigned(host="hv-2"),
        l3.FloatingIpAssociationAccepted(
            port_id=port_id, network_id=network_id, fixed_ip="10.0.0.2", host="hv-2"
        ),
    ]
    assert c.state.ports[port_id].host == "hv-2"
    assert c.input(switch(), "i-1") == []  # re-sent: moved already
    # The placement moved too (what the instance's port follows from now on).
    assert c.state.placements["i-1"].host == "hv-2"
    # A later reschedule still wins, as before.
    assert c.input(scheduled("hv-3", attempt=2), "i-1")[0] == PortHostAssigned(host="hv-3")


def test_a_switch_of_an_instance_without_a_port_decides_nothing() -> None:
    c = Controller()
    assert c.input(switch(), "i-9") == []


def test_a_rebuild_from_the_log_has_the_moved_placement() -> None:
    c, _ = migrating()
    c.input(switch(), "i-1")
    state = NetworkState()
    for envelope in c.log:
        state = evolve(state, envelope)
    assert state.placements["i-1"].host == "hv-2"
    assert state.ports[instance_port_id("i-1")].host == "hv-2"
    assert restore(snapshot(state)) == state
