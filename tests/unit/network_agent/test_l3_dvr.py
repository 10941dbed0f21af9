"""Routed east-west across hosts (DVR) in the agent's plan: a router's host has a leg on each
of its networks, its routed frames leave with a MAC of its host, its neighbours on other
hosts are known, and each host's tunnel lets in other hosts' routed frames only as IP from
their ports on the router's other networks."""

from __future__ import annotations

import json
from collections.abc import Sequence

from tests.unit.network_agent.test_l3_core import HOST, VTEP, base, ev, fold, port

from virga_events import Envelope
from virga_events.catalog.l3 import RouterInterfaceAdded, RouterInterfaceRemoved
from virga_events.catalog.network import NetworkAgentRegistered, NetworkCreated, PortBound
from virga_network.agent.core import names, nft_rules, nft_tunnels
from virga_network.agent.core.dvr import routed_mac
from virga_network.agent.core.l3 import redirect_mac
from virga_network.agent.core.plan import HostPlan, host_plan
from virga_network.agent.core.plumbing import FilterSet, RemotePort, TunnelFilter
from virga_network.agent.drivers import netlink_dvr

OTHER, OTHER_VTEP = "h2", "192.0.2.2"
SNAT_MAC, SNAT_IP = "fa:16:3e:00:01:03", "10.0.1.3"
P1_MAC, P2_MAC = "02:00:00:00:00:05", "02:00:00:00:00:06"


def two_networks(*events: Envelope) -> list[Envelope]:
    """Router r-1 on n-1 and n-2 (with a SNAT port); p-1 on h1 in n-1, p-2 on h2 in n-2, both
    bound. h1 is the SNAT host (first by name) and has no port on n-2."""
    network = NetworkCreated(
        name="n2", cidr="10.0.1.0/24", vni=1002, gateway_ip="10.0.1.1", allocation_pools=()
    )
    added = RouterInterfaceAdded(
        network_id="n-2", gateway_ip="10.0.1.1", snat_mac=SNAT_MAC, snat_ip=SNAT_IP
    )
    return [
        *base(),
        ev(network, "n-2"),
        ev(added, "r-1"),
        ev(NetworkAgentRegistered(vtep_ip=VTEP), HOST, None),
        ev(NetworkAgentRegistered(vtep_ip=OTHER_VTEP), OTHER, None),
        *port("p-1", "10.0.0.5"),
        *port("p-2", "10.0.1.6", host=OTHER, net="n-2"),
        ev(PortBound(host=HOST, network_id="n-1", tap="t", mac=P1_MAC, ips=("10.0.0.5",)), "p-1"),
        ev(PortBound(host=OTHER, network_id="n-2", tap="t", mac=P2_MAC, ips=("10.0.1.6",)), "p-2"),
        *events,
    ]


def plan(events: Sequence[Envelope], host: str = HOST) -> HostPlan:
    vtep = VTEP if host == HOST else OTHER_VTEP
    return host_plan(fold(events, host), vtep, names.DEFAULT_PREFIX, edges=True)


def test_a_routers_host_has_a_leg_and_the_network_on_each_of_its_networks() -> None:
    wanted = plan(two_networks())
    (router,) = wanted.routers
    one, two = router.interfaces
    assert (one.network_id, two.network_id) == ("n-1", "n-2")
    # n-2 has no port here: its bridge and tunnel are here for the router, without an edge.
    networks = {n.network_id: n for n in wanted.networks}
    assert set(networks) == {"n-1", "n-2"}
    assert networks["n-2"].edge is None
    assert networks["n-1"].edge is not None
    assert (P2_MAC, OTHER_VTEP) in networks["n-2"].fdb
    # Each leg: this host's MAC for what it sends onto the tunnel, its remote neighbours.
    assert two.routed_mac == routed_mac("r-1", "n-2", HOST) != routed_mac("r-1", "n-2", OTHER)
    assert two.neighbours == (("10.0.1.6", P2_MAC),)
    assert one.neighbours == ()
    assert set(wanted.filters().routed) == {
        (one.veth, routed_mac("r-1", "n-1", HOST)),
        (two.veth, routed_mac("r-1", "n-2", HOST)),
    }


def test_the_snat_host_serves_a_network_it_has_no_port_on() -> None:
    (snat_side,) = plan(two_networks()).routers
    assert snat_side.interfaces[1].snat is not None
    (other_side,) = plan(two_networks(), OTHER).routers
    redirect = other_side.interfaces[1].redirect
    assert redirect is not None
    assert (redirect.snat_ip, redirect.snat_mac) == (SNAT_IP, SNAT_MAC)
    # h2's n-2 tunnel lets the SNAT port in from h1; h1's lets h2's redirect MAC in.
    theirs = {n.network_id: n for n in plan(two_networks(), OTHER).networks}["n-2"]
    assert RemotePort(SNAT_MAC, VTEP, (SNAT_IP,), routed=True) in theirs.remotes
    assert (SNAT_MAC, VTEP) in theirs.fdb
    ours = {n.network_id: n for n in plan(two_networks()).networks}["n-2"]
    assert RemotePort(redirect_mac("r-1", "n-2", OTHER), OTHER_VTEP, ("10.0.1.6",)) in ours.remotes


def test_a_tunnel_lets_in_other_hosts_routed_frames_from_their_ports_on_other_networks() -> None:
    theirs = {n.network_id: n for n in plan(two_networks(), OTHER).networks}
    # Into n-2 on h2: h1's router, with p-1's address (n-1); no fdb entry (nothing goes to it).
    from_h1 = RemotePort(routed_mac("r-1", "n-2", HOST), VTEP, ("10.0.0.5",), forwarded=True)
    assert from_h1 in theirs["n-2"].remotes
    assert not any(mac == from_h1.mac for mac, _ in theirs["n-2"].fdb)
    # Into n-1 on h2: from h1, routed from n-2, where h1 has no port: nothing.
    assert not any(r.forwarded for r in theirs["n-1"].remotes)
    ours = {n.network_id: n for n in plan(two_networks()).networks}
    mac = routed_mac("r-1", "n-1", OTHER)
    assert RemotePort(mac, OTHER_VTEP, ("10.0.1.6",), forwarded=True) in ours["n-1"].remotes


def test_a_routed_mac_carries_ip_from_its_addresses_only_and_no_arp() -> None:
    routed = RemotePort("0e:00:00:00:00:01", VTEP, ("10.0.0.5", "fd00::5"), forwarded=True)
    guest = RemotePort(P2_MAC, VTEP, ("10.0.1.6",))
    rules = nft_tunnels.add_tunnel("t", TunnelFilter("vx", 1002, (routed, guest)))
    text = "\n".join(rules)
    assert f"{routed.mac} . 10.0.0.5" in text
    assert f"{routed.mac} . fd00::5" in text
    assert f"{routed.mac} . {routed.mac}" not in text  # no ARP
    assert f"{routed.mac} . ::" not in text
    assert f"{routed.mac} . fe80" not in text
    # A tunnel with routed frames only: no ARP, no neighbour advertisements at all.
    alone = nft_tunnels.add_tunnel("t", TunnelFilter("vx", 1002, (routed,)))
    assert "add rule bridge t tunnel_vx ether type arp drop" in alone
    assert "add rule bridge t tunnel_vx ether type ip6 icmpv6 type nd-neighbor-advert drop" in alone
    # The input check binds the MAC to its host's VTEP, as any remote port's.
    assert (4, VTEP, 1002, routed.mac) in nft_tunnels.senders([TunnelFilter("vx", 1002, (routed,))])


def test_the_source_mac_rewrite_is_a_map_changed_element_by_element() -> None:
    marks = nft_rules.Marks()
    legs = (("vgiaaaa", "0e:00:00:00:00:01"), ("vgibbbb", "0e:00:00:00:00:02"))
    whole = nft_rules.render(FilterSet(routed=legs), "vg", marks)
    assert 'oifname "vgx*" ether saddr set iifname map @routed' in whole
    assert 'add element bridge virga_vg routed { "vgiaaaa" : 0e:00:00:00:00:01 }' in whole
    moved = (("vgiaaaa", "0e:00:00:00:00:01"), ("vgibbbb", "0e:00:00:00:00:03"))
    changes = nft_rules.render_changes(FilterSet(routed=legs), FilterSet(routed=moved), "vg", marks)
    assert changes.splitlines() == [
        'delete element bridge virga_vg routed { "vgibbbb" }',
        'add element bridge virga_vg routed { "vgibbbb" : 0e:00:00:00:00:03 }',
    ]
    assert (
        nft_rules.render_changes(FilterSet(routed=legs), FilterSet(routed=legs), "vg", marks) == ""
    )


def test_removing_the_interface_removes_its_legs_and_network_and_a_rebuild_agrees() -> None:
    removed = plan(two_networks(ev(RouterInterfaceRemoved(network_id="n-2"), "r-1")))
    (router,) = removed.routers
    assert [leg.network_id for leg in router.interfaces] == ["n-1"]
    assert [n.network_id for n in removed.networks] == ["n-1"]
    # The log in another order (ports before their network) plans the same.
    events = two_networks()
    assert plan([*events[5:], *events[:5]]) == plan(events)


def test_neighbours_are_converged_from_what_the_namespace_has() -> None:
    (router,) = plan(two_networks()).routers
    leg = names.veth_peer(router.interfaces[1].veth)
    redirect = "vgiredirectp"
    listing = json.dumps([
        {"dst": "10.0.1.6", "dev": leg, "lladdr": P2_MAC, "state": ["PERMANENT"]},
        {"dst": "10.0.1.9", "dev": leg, "lladdr": "02:00:00:00:00:09", "state": ["PERMANENT"]},
        {"dst": SNAT_IP, "dev": redirect, "lladdr": SNAT_MAC, "state": ["PERMANENT"]},
    ])  # fmt: skip
    stale = netlink_dvr.stale(listing, router)
    assert stale == [f"neigh flush to 10.0.1.9 dev {leg} nud permanent"]
    assert netlink_dvr.lines(router) == [
        f"neigh replace 10.0.1.6 lladdr {P2_MAC} dev {leg} nud permanent"
    ]
