"""The gateway's projection of networks and ports: the same views whatever the topic order."""

from __future__ import annotations

import itertools

import msgspec
from tests.unit.gateway.events import envelope, fold, requested

from virga_events import Envelope
from virga_events.catalog.network import (
    AllocationPool,
    NetworkCreated,
    NetworkDeletionFailed,
    NetworkDeletionRequested,
    NetworkRequested,
    PortAllocated,
    PortBound,
    PortDeleted,
    PortRequested,
    instance_port_id,
)
from virga_gateway.instances.views import instance_view
from virga_gateway.networks.views import network_view
from virga_gateway.ports.views import port_view
from virga_gateway.state import GatewayState

POOLS = (AllocationPool(start="10.0.0.2", end="10.0.0.254"),)


def gateway_facts() -> list[Envelope]:
    return [
        envelope(NetworkRequested(name="n", cidr="10.0.0.0/24"), "net", tenant="t1"),
        envelope(PortRequested(network_id="net"), "p1", tenant="t1", seconds=1),
        envelope(NetworkDeletionRequested(), "net", tenant="t1", seconds=3),
    ]


def controller_facts() -> list[Envelope]:
    def network(event: object, aggregate: str, seconds: float) -> Envelope:
        return envelope(event, aggregate, tenant="t1", producer="network", seconds=seconds)  # type: ignore[arg-type]

    allocated = PortAllocated(
        network_id="net", mac="fa:16:3e:00:00:01", ips=("10.0.0.2",), security_groups=("sg",)
    )
    return [
        network(
            NetworkCreated(
                name="n",
                cidr="10.0.0.0/24",
                vni=1000,
                gateway_ip="10.0.0.1",
                allocation_pools=POOLS,
            ),
            "net",
            0.5,
        ),
        network(allocated, "p1", 1.5),
        network(PortBound(host="hv", network_id="net", tap="tap1", mac="m", ips=()), "p1", 2),
        network(NetworkDeletionFailed(reason="still has ports: p1", ports=("p1",)), "net", 3.5),
    ]


def views(state: GatewayState) -> bytes:
    return msgspec.json.encode([network_view(state.networks["net"]), port_view(state.ports["p1"])])


def test_any_interleaving_of_the_two_topics_gives_the_same_views() -> None:
    expected = views(fold(*gateway_facts(), *controller_facts()))
    for split in itertools.combinations(range(7), 3):
        mine, theirs = iter(gateway_facts()), iter(controller_facts())
        order = [next(mine) if i in split else next(theirs) for i in range(7)]
        assert views(fold(*order)) == expected
    state = fold(*controller_facts(), *gateway_facts())  # a rebuild: the inputs first
    network, port = state.networks["net"], state.ports["p1"]
    assert (network.status, network.fault, network.ports) == (
        "ACTIVE",
        "still has ports: p1",
        ["p1"],
    )
    assert (port.status, port.ips, port.bound_host) == ("ACTIVE", ["10.0.0.2"], "hv")


def test_an_instances_port_gives_it_addresses_until_deleted() -> None:
    port_id = instance_port_id("i1")
    allocated = PortAllocated(
        network_id="net",
        mac="fa:16:3e:00:00:02",
        ips=("10.0.0.3",),
        security_groups=("sg",),
        instance_id="i1",
    )
    fact = envelope(allocated, port_id, tenant="t1", producer="network", seconds=2)
    for state in (
        fold(requested("i1", network="net"), fact),
        fold(fact, requested("i1", network="net")),
    ):
        [address] = instance_view(state.instances["i1"]).addresses
        assert (address.network, address.ip, address.mac) == ("net", "10.0.0.3", allocated.mac)
        assert state.networks["net"].ports == [port_id]
    gone = fold(envelope(PortDeleted(), port_id, tenant="t1", producer="network"), state=state)
    assert instance_view(gone.instances["i1"]).addresses == []
    assert gone.networks["net"].ports == []


def test_a_networks_dhcp_is_its_requests_and_shown() -> None:
    facts = controller_facts()[:1]
    assert network_view(fold(*gateway_facts()[:1], *facts).networks["net"]).dhcp is True
    without = envelope(
        NetworkRequested(name="n", cidr="10.0.0.0/24", dhcp=False), "net", tenant="t1"
    )
    for state in (fold(without, *facts), fold(*facts, without)):
        view = network_view(state.networks["net"])
        assert (view.status, view.dhcp) == ("ACTIVE", False)
