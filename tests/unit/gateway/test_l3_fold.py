"""The projection of external networks, floating IPs and routers is the same whatever order a
rebuild reads the topics in (the controller's `<ns>.network` before the gateway's requests,
partitions mixed), and ports and instances show the floating IPs pointed at them."""

from __future__ import annotations

import random

import pytest
from tests.unit.gateway.events import envelope, fold, requested

from virga_events import Envelope, Event
from virga_events.catalog import l3
from virga_events.catalog import network as net
from virga_gateway.external_networks.views import external_network_view
from virga_gateway.floating_ips.views import FloatingIpRef, floating_ip_view
from virga_gateway.instances.views import instance_view
from virga_gateway.networks.queries import usable_network
from virga_gateway.ports.views import port_view
from virga_gateway.problems import Problem
from virga_gateway.routers.views import router_view
from virga_gateway.state import GatewayState

POOL = (net.AllocationPool(start="203.0.113.10", end="203.0.113.20"),)
PORT = net.instance_port_id("i1")


def life() -> list[Envelope]:
    """In causal order: what a live gateway folds."""
    requested_external = l3.ExternalNetworkRequested(
        name="x", cidr="203.0.113.0/24", gateway_ip="203.0.113.1", host_interface="br-ex"
    )
    created_external = l3.ExternalNetworkCreated(
        name="x", cidr="203.0.113.0/24", gateway_ip="203.0.113.1", allocation_pools=POOL,
        host_interface="br-ex",
    )  # fmt: skip

    def ctl(event: Event, aggregate: str, seconds: float) -> Envelope:
        return envelope(event, aggregate, tenant="t1", producer="network", seconds=seconds)

    def api(event: Event, aggregate: str, seconds: float) -> Envelope:
        return envelope(event, aggregate, tenant="t1", seconds=seconds)

    accepted = l3.FloatingIpAssociationAccepted(
        port_id=PORT, network_id="n1", fixed_ip="10.0.0.2", host="hv-1"
    )
    acceptance = ctl(accepted, "f1", 6)
    # The port's host confirms it, in its own topic (read in any order with the controller's).
    confirmed = l3.FloatingIpAssociated(port_id=PORT, host="hv-1", acceptance=acceptance.event_id)
    confirmation = envelope(confirmed, "f1", tenant="t1", producer="network@hv-1", seconds=7)
    return [
        envelope(requested_external, "x1"),
        envelope(created_external, "x1", producer="network", seconds=1),
        api(net.NetworkRequested(name="n", cidr="10.0.0.0/24"), "n1", 1),
        ctl(net.NetworkCreated(name="n", cidr="10.0.0.0/24", vni=1000, gateway_ip="10.0.0.1",
                               allocation_pools=()), "n1", 2),
        requested("i1", network="n1", seconds=2),
        ctl(net.PortAllocated(network_id="n1", mac="fa:16:3e:00:00:01", ips=("10.0.0.2",),
                              security_groups=("g",), instance_id="i1", name="vm-i1-port"),
            PORT, 3),
        api(l3.FloatingIpRequested(external_network_id="x1"), "f1", 3),
        ctl(l3.FloatingIpAllocated(external_network_id="x1", ip="203.0.113.10"), "f1", 4),
        api(l3.FloatingIpRequested(external_network_id="x1"), "f2", 3),
        ctl(l3.FloatingIpAllocated(external_network_id="x1", ip="203.0.113.11"), "f2", 4),
        api(l3.FloatingIpAssociationRequested(port_id=PORT), "f1", 5),
        acceptance,
        confirmation,
        api(l3.FloatingIpReleaseRequested(), "f2", 5),
        ctl(l3.FloatingIpReleased(external_network_id="x1", ip="203.0.113.11"), "f2", 6),
        api(l3.RouterRequested(name="r", external_network_id="x1"), "r1", 5),
        ctl(l3.RouterCreated(name="r", external_network_id="x1", external_ip="203.0.113.12"),
            "r1", 6),
        api(l3.RouterInterfaceRequested(network_id="n1"), "r1", 7),
        ctl(l3.RouterInterfaceAdded(network_id="n1", gateway_ip="10.0.0.1",
                                    snat_mac="fa:16:3e:00:00:03", snat_ip="10.0.0.3"), "r1", 8),
    ]  # fmt: skip


def shown(state: GatewayState) -> dict[str, object]:
    return {
        "external": external_network_view(state.external_networks["x1"], admin=True),
        "users": (
            state.external_networks["x1"].floating_ips,
            state.external_networks["x1"].routers,
        ),
        "fip": floating_ip_view(state.floating_ips["f1"]),
        "released": state.floating_ips["f2"].status,
        "router": router_view(state.routers["r1"]),
        "network": (state.networks["n1"].router_id, state.networks["n1"].snat_ip),
        "port": port_view(state.ports[PORT]),
        "instance": instance_view(state.instances["i1"]).floating_ips,
        "orders": (state.tenant_floating_ip_order, state.tenant_router_order),
        "usage": state.quota_usage,
    }


def test_ports_and_instances_show_their_floating_ip_and_the_network_its_router() -> None:
    state = fold(*life())
    view = shown(state)
    ref = [FloatingIpRef(id="f1", ip="203.0.113.10")]
    assert view["instance"] == ref
    assert port_view(state.ports[PORT]).floating_ips == ref
    assert view["network"] == ("r1", "10.0.0.3")
    assert view["users"] == (["f1"], ["r1"])
    assert view["released"] == "DELETED"
    assert state.quota_usage["t1"]["floating_ips"] == 1
    assert state.quota_usage["t1"]["routers"] == 1


@pytest.mark.parametrize("seed", range(20))
def test_a_rebuild_in_any_topic_order_shows_what_live_folding_showed(seed: int) -> None:
    events = life()
    live = shown(fold(*events))
    rng = random.Random(seed)
    # The services' topics first (as a rebuild reads them), each aggregate's facts in order,
    # aggregates mixed; then the gateway's own requests, likewise.
    ordered: list[Envelope] = []
    for own in (False, True):
        streams: dict[str, list[Envelope]] = {}
        for each in events:
            if (each.producer == "gateway") == own:
                streams.setdefault(each.aggregate_id, []).append(each)
        queues = [list(reversed(s)) for s in streams.values()]
        while queues:
            queue = rng.choice(queues)
            ordered.append(queue.pop())
            if not queue:
                queues.remove(queue)
    assert shown(fold(*ordered)) == live


def test_a_routers_snat_port_counts_against_the_pool_until_the_interface_goes() -> None:
    state = fold(*life())
    network = state.networks["n1"]
    assert network.status == "ACTIVE"
    network.pool_size = len(network.ports) + 1  # one address left: the SNAT port's
    with pytest.raises(Problem) as full:
        usable_network(state, "t1", "n1", "network_id")
    assert full.value.status == 409
    removed = envelope(
        l3.RouterInterfaceRemoved(network_id="n1"), "r1", tenant="t1", producer="network",
        seconds=20,
    )  # fmt: skip
    state = fold(*life(), removed)
    assert (state.networks["n1"].router_id, state.networks["n1"].snat_ip) == (None, None)
    state.networks["n1"].pool_size = len(state.networks["n1"].ports) + 1
    assert usable_network(state, "t1", "n1", "network_id")[0] is state.networks["n1"]
