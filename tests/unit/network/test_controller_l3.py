"""The network controller's public addresses: external networks, floating IPs and routers."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.network.test_controller import (
    TINY,
    Controller,
    _shuffled_by_aggregate,
    allocated,
    scheduled,
)

from virga_events import Event
from virga_events.catalog import l3
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.network import (
    AllocationPool,
    NetworkDeletionFailed,
    NetworkDeletionRequested,
    PortDeleted,
    PortDeletionRequested,
    PortHostAssigned,
    instance_port_id,
)
from virga_network.core.fold import evolve
from virga_network.core.macs import candidate_mac
from virga_network.core.snapshot import restore, snapshot

POOL = (AllocationPool(start="203.0.113.10", end="203.0.113.13"),)


def external(c: Controller, ext_id: str = "ext-1", **kw: object) -> Event:
    fields: dict[str, object] = {
        "name": "public",
        "cidr": "203.0.113.0/24",
        "gateway_ip": "203.0.113.1",
        "allocation_pools": POOL,
        "host_interface": "br-ex",
        **kw,
    }
    [outcome] = c.input(l3.ExternalNetworkRequested(**fields), ext_id, None)  # type: ignore[arg-type]
    return outcome


def fip(c: Controller, fip_id: str, tenant: str = "t-1", ext_id: str = "ext-1") -> Event:
    [outcome] = c.input(l3.FloatingIpRequested(external_network_id=ext_id), fip_id, tenant)
    return outcome


def routed(c: Controller, network_id: str, router_id: str = "r-net", tenant: str = "t-1") -> None:
    """A router on ext-1 with the network attached: floating IPs may point at its ports."""
    request = l3.RouterRequested(name="r", external_network_id="ext-1")
    [created] = c.input(request, router_id, tenant)
    assert isinstance(created, l3.RouterCreated), created
    [added] = c.input(l3.RouterInterfaceRequested(network_id=network_id), router_id, tenant)
    assert isinstance(added, l3.RouterInterfaceAdded), added


def test_an_external_network_is_made_with_its_pools_or_refused_with_the_reason() -> None:
    c = Controller()
    created = external(c)
    assert created == l3.ExternalNetworkCreated(
        name="public",
        cidr="203.0.113.0/24",
        gateway_ip="203.0.113.1",
        allocation_pools=POOL,
        host_interface="br-ex",
    )
    defaulted = external(c, "ext-2", cidr="198.51.100.0/28", gateway_ip="198.51.100.14",
                         allocation_pools=())  # fmt: skip
    assert isinstance(defaulted, l3.ExternalNetworkCreated)
    assert defaulted.allocation_pools == (
        AllocationPool(start="198.51.100.2", end="198.51.100.13"),
    )
    for bad, words in [
        ({"gateway_ip": "203.0.113.11"}, "gateway_ip"),
        ({"gateway_ip": "192.0.2.1"}, "gateway_ip"),
        ({"host_interface": "eth0/1"}, "host_interface"),
        ({"host_interface": "much-too-long-name"}, "host_interface"),
    ]:
        refused = external(c, f"ext-bad-{words}-{len(c.log)}", **bad)
        assert isinstance(refused, l3.ExternalNetworkCreationFailed), bad
        assert words in refused.reason


def test_floating_ips_and_routers_share_the_pool_and_never_hold_one_address_twice() -> None:
    c = Controller()
    external(c)
    got = [fip(c, "fip-1"), fip(c, "fip-2", "t-2")]
    [router] = c.input(l3.RouterRequested(name="r", external_network_id="ext-1"), "r-1")
    assert [g.ip for g in got if isinstance(g, l3.FloatingIpAllocated)] == [
        "203.0.113.10",
        "203.0.113.11",
    ]
    assert router == l3.RouterCreated(
        name="r", external_network_id="ext-1", external_ip="203.0.113.12"
    )
    assert isinstance(fip(c, "fip-3"), l3.FloatingIpAllocated)
    full = fip(c, "fip-4")
    assert isinstance(full, l3.FloatingIpAllocationFailed)
    assert "no free address" in full.reason
    # Another tenant cannot release it; its owner can, and the address comes back.
    assert c.input(l3.FloatingIpReleaseRequested(), "fip-1", "t-2") == []
    [released] = c.input(l3.FloatingIpReleaseRequested(), "fip-1")
    assert released == l3.FloatingIpReleased(external_network_id="ext-1", ip="203.0.113.10")
    again = fip(c, "fip-5")
    assert isinstance(again, l3.FloatingIpAllocated)
    assert again.ip == "203.0.113.10"
    assert c.input(l3.FloatingIpReleaseRequested(), "fip-4") == [
        l3.FloatingIpReleased(external_network_id="")  # a refused one leaves the lists
    ]
    unknown = fip(c, "fip-6", ext_id="ext-none")
    assert isinstance(unknown, l3.FloatingIpAllocationFailed)


def test_an_external_network_in_use_is_not_deleted_and_says_by_whom() -> None:
    c = Controller()
    external(c)
    fip(c, "fip-1")
    c.input(l3.RouterRequested(name="r", external_network_id="ext-1"), "r-1")
    [refused] = c.input(l3.ExternalNetworkDeletionRequested(), "ext-1", "")
    assert isinstance(refused, l3.ExternalNetworkDeletionFailed)
    assert (refused.floating_ips, refused.routers) == (("fip-1",), ("r-1",))
    c.input(l3.FloatingIpReleaseRequested(), "fip-1")
    c.input(l3.RouterDeletionRequested(), "r-1")
    assert c.input(l3.ExternalNetworkDeletionRequested(), "ext-1", "") == [
        l3.ExternalNetworkDeleted()
    ]
    assert isinstance(fip(c, "fip-2"), l3.FloatingIpAllocationFailed)


def test_association_checks_the_port_and_a_deleted_port_drops_it() -> None:
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/24")
    port_a = c.port(network_id)[0]
    port_b = c.port(network_id)[0]
    theirs = c.port(c.network("10.0.0.0/24", tenant="t-2")[0], tenant="t-2")[0]
    fip(c, "fip-1")
    fip(c, "fip-2")
    # Without a router of its network on the external network, nothing could reach the port.
    [unrouted] = c.input(l3.FloatingIpAssociationRequested(port_id=port_a), "fip-1")
    assert isinstance(unrouted, l3.FloatingIpAssociationFailed)
    assert "has no router on external network ext-1" in unrouted.reason
    routed(c, network_id)
    [moved] = c.input(l3.FloatingIpAssociationRequested(port_id=port_a), "fip-1")
    assert moved == l3.FloatingIpAssociationAccepted(
        port_id=port_a, network_id=network_id, fixed_ip="10.0.0.2", host=None
    )
    assert c.state.floating_ips["fip-1"].ip == "203.0.113.10"
    [busy] = c.input(l3.FloatingIpAssociationRequested(port_id=port_a), "fip-2")
    assert isinstance(busy, l3.FloatingIpAssociationFailed)
    assert "already has floating IP fip-1" in busy.reason
    [foreign] = c.input(l3.FloatingIpAssociationRequested(port_id=theirs), "fip-2")
    assert isinstance(foreign, l3.FloatingIpAssociationFailed)
    # Re-association moves it: port A is free for the other one then.
    [to_b] = c.input(l3.FloatingIpAssociationRequested(port_id=port_b), "fip-1")
    assert isinstance(to_b, l3.FloatingIpAssociationAccepted)
    assert to_b.fixed_ip == "10.0.0.3"
    assert isinstance(
        c.input(l3.FloatingIpAssociationRequested(port_id=port_a), "fip-2")[0],
        l3.FloatingIpAssociationAccepted,
    )
    assert c.input(PortDeletionRequested(), port_a) == [
        PortDeleted(),
        l3.FloatingIpDissociated(port_id=port_a),
    ]
    assert c.state.floating_ips["fip-2"].port_id is None
    assert c.input(l3.FloatingIpAssociationRequested(port_id=None), "fip-1") == [
        l3.FloatingIpDissociated(port_id=port_b)
    ]
    assert c.input(l3.FloatingIpAssociationRequested(port_id=None), "fip-1") == []


def test_router_interfaces_one_router_per_network_and_floating_ips_behind_them() -> None:
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/24")
    port_id = c.port(network_id)[0]
    c.input(l3.RouterRequested(name="r", external_network_id="ext-1"), "r-1")
    c.input(l3.RouterRequested(name="r", external_network_id="ext-1"), "r-2")
    [added] = c.input(l3.RouterInterfaceRequested(network_id=network_id), "r-1")
    snat_mac = candidate_mac("fa:16:3e", l3.snat_port_id("r-1", network_id), 0)
    assert added == l3.RouterInterfaceAdded(
        network_id=network_id, gateway_ip="10.0.0.1", snat_mac=snat_mac, snat_ip="10.0.0.3"
    )
    [taken] = c.input(l3.RouterInterfaceRequested(network_id=network_id), "r-2")
    assert isinstance(taken, l3.RouterInterfaceAdditionFailed)
    [busy] = c.input(l3.RouterDeletionRequested(), "r-1")
    assert isinstance(busy, l3.RouterDeletionFailed)
    assert busy.networks == (network_id,)
    [attached] = c.input(NetworkDeletionRequested(), network_id)
    assert isinstance(attached, NetworkDeletionFailed)
    assert "router r-1" in attached.reason
    fip(c, "fip-1")
    c.input(l3.FloatingIpAssociationRequested(port_id=port_id), "fip-1")
    [behind] = c.input(l3.RouterInterfaceRemovalRequested(network_id=network_id), "r-1")
    assert isinstance(behind, l3.RouterInterfaceRemovalFailed)
    assert behind.floating_ips == ("fip-1",)
    c.input(l3.FloatingIpAssociationRequested(port_id=None), "fip-1")
    assert c.input(l3.RouterInterfaceRemovalRequested(network_id=network_id), "r-1") == [
        l3.RouterInterfaceRemoved(network_id=network_id)
    ]
    [deleted] = c.input(l3.RouterDeletionRequested(), "r-1")
    assert deleted == l3.RouterDeleted(external_network_id="ext-1", external_ip="203.0.113.10")


def _workload(c: Controller, rng: random.Random, steps: int) -> None:
    external(c, allocation_pools=(AllocationPool(start="203.0.113.10", end="203.0.113.15"),))
    network_id, _ = c.network("10.0.0.0/24")
    ports = [c.port(network_id)[0] for _ in range(3)]
    routed(c, network_id)
    holders: list[str] = []
    for step in range(steps):
        roll = rng.random()
        if roll < 0.4 or not holders:
            holder = f"h-{step}"
            request: Event = (
                l3.FloatingIpRequested(external_network_id="ext-1")
                if rng.random() < 0.7
                else l3.RouterRequested(name="r", external_network_id="ext-1")
            )
            if c.input(request, holder):
                holders.append(holder)
        elif roll < 0.7:
            holder = holders.pop(rng.randrange(len(holders)))
            if holder in c.state.floating_ips:
                c.input(l3.FloatingIpReleaseRequested(), holder)
            else:
                c.input(l3.RouterDeletionRequested(), holder)
        else:
            holder = rng.choice(holders)
            port = rng.choice([*ports, None])
            c.input(l3.FloatingIpAssociationRequested(port_id=port), holder)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32), st.integers(5, 60))
def test_a_rebuild_in_any_order_holds_what_the_live_controller_holds(seed: int, steps: int) -> None:
    rng = random.Random(seed)
    live = Controller()
    _workload(live, rng, steps)
    rebuilt = Controller()
    for envelope in _shuffled_by_aggregate(live.log, rng):
        rebuilt.state = evolve(rebuilt.state, envelope)
    rebuilt = Controller(restore(snapshot(rebuilt.state)))
    live_ext, rebuilt_ext = live.state.external_networks, rebuilt.state.external_networks
    assert sorted(live_ext["ext-1"].used) == sorted(rebuilt_ext["ext-1"].used)
    assert all(len(h) == 1 for h in live_ext["ext-1"].used.values())
    live_net, rebuilt_net = live.state.networks["net-1"], rebuilt.state.networks["net-1"]
    assert live_net.used == rebuilt_net.used
    assert live.state.macs == rebuilt.state.macs
    assert live.state.port_floating_ips == rebuilt.state.port_floating_ips
    assert fip(live, "last") == fip(rebuilt, "last")


def test_repeated_requests_decide_nothing() -> None:
    c = Controller()
    external(c)
    assert isinstance(fip(c, "fip-1"), l3.FloatingIpAllocated)
    assert c.input(l3.FloatingIpRequested(external_network_id="ext-1"), "fip-1") == []


def test_a_floating_ip_follows_its_instance_to_a_new_host_and_goes_with_it() -> None:
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/24")
    port_id = instance_port_id("i-1")
    c.input(InstanceRequested(name="web", flavor=TINY, network=network_id), "i-1")
    c.input(scheduled("hv-1"), "i-1")
    routed(c, network_id)
    fip(c, "fip-1")
    [first] = c.input(l3.FloatingIpAssociationRequested(port_id=port_id), "fip-1")
    assert first == l3.FloatingIpAssociationAccepted(
        port_id=port_id, network_id=network_id, fixed_ip="10.0.0.2", host="hv-1"
    )
    # Rescheduled: the association is stated again with the host the data path must act on.
    assert c.input(scheduled("hv-2", attempt=2), "i-1") == [
        PortHostAssigned(host="hv-2"),
        l3.FloatingIpAssociationAccepted(
            port_id=port_id, network_id=network_id, fixed_ip="10.0.0.2", host="hv-2"
        ),
    ]
    assert c.input(InstanceDeleted(host="hv-2"), "i-1") == [
        PortDeleted(),
        l3.FloatingIpDissociated(port_id=port_id),
    ]
    assert c.state.floating_ips["fip-1"].port_id is None


def test_a_hosts_confirmation_changes_nothing_and_a_v1_association_is_the_acceptance() -> None:
    """`FloatingIpAssociated` is a host's confirmation (the controller's decision is
    `FloatingIpAssociationAccepted`); one of version 1, upcast, was the decision itself."""
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/24")
    port_a = c.port(network_id)[0]
    routed(c, network_id)
    fip(c, "fip-1")
    before = c.state.floating_ips["fip-1"].port_id
    assert c.input(l3.FloatingIpAssociated(port_id=port_a, host="hv-1"), "fip-1") == []
    assert c.state.floating_ips["fip-1"].port_id == before is None
    old = l3.FloatingIpAssociated(
        port_id=port_a, host="", network_id=network_id, fixed_ip="10.0.0.2", accepted=True
    )
    assert c.input(old, "fip-1") == []
    assert c.state.floating_ips["fip-1"].port_id == port_a
    assert c.state.port_floating_ips[port_a] == ["fip-1"]


def test_an_interface_holds_a_snat_port_until_it_is_removed() -> None:
    c = Controller()
    external(c)
    network_id, _ = c.network("10.0.0.0/29")  # 10.0.0.2 - 10.0.0.6
    first = c.port(network_id)[0]
    c.input(l3.RouterRequested(name="r", external_network_id="ext-1"), "r-1")
    [added] = c.input(l3.RouterInterfaceRequested(network_id=network_id), "r-1")
    assert isinstance(added, l3.RouterInterfaceAdded)
    assert added.snat_ip == "10.0.0.3"
    holder = l3.snat_port_id("r-1", network_id)
    assert c.state.macs[added.snat_mac] == [holder]
    assert c.state.networks[network_id].used[3] == [holder]
    # Ports never get the SNAT port's address or MAC.
    ports = [allocated(c.port(network_id)[1]) for _ in range(3)]
    assert [p.ips for p in ports] == [("10.0.0.4",), ("10.0.0.5",), ("10.0.0.6",)]
    assert added.snat_mac not in {p.mac for p in ports}
    # Removed: the address is the next one handed out again, the MAC free.
    c.input(PortDeletionRequested(), first)
    assert c.input(l3.RouterInterfaceRemovalRequested(network_id=network_id), "r-1") == [
        l3.RouterInterfaceRemoved(network_id=network_id)
    ]
    assert added.snat_mac not in c.state.macs
    assert allocated(c.port(network_id)[1]).ips == ("10.0.0.2",)
    assert allocated(c.port(network_id)[1]).ips == ("10.0.0.3",)
    # A full network has no room for a SNAT port: the interface is refused and says why.
    [refused] = c.input(l3.RouterInterfaceRequested(network_id=network_id), "r-1")
    assert isinstance(refused, l3.RouterInterfaceAdditionFailed)
    assert refused.reason == "no free address left in the pools of 10.0.0.0/29 for the SNAT port"
