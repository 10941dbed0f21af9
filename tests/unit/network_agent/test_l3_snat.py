"""Centralized SNAT in the agent's plan: the SNAT host's SNAT legs, the other hosts' redirects,
what each host's tunnel lets in for them, the NAT table's marks and the routing rules."""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson
from tests.unit.network_agent.test_l3_core import HOST, VTEP, base, ev, fold, port

from virga_events import Envelope
from virga_events.catalog.l3 import RouterInterfaceAdded, RouterInterfaceRemoved
from virga_events.catalog.network import NetworkAgentRegistered, PortBound
from virga_network.agent.core import names, nft_nat, nft_tunnels
from virga_network.agent.core.l3 import redirect_mac
from virga_network.agent.core.plan import HostPlan, host_plan, zone
from virga_network.agent.core.plumbing import Redirect, RemotePort, SnatLeg, TunnelFilter
from virga_network.agent.core.snapshot import restore, snapshot
from virga_network.agent.drivers import netlink_snat

OTHER, OTHER_VTEP = "h2", "192.0.2.2"
SNAT_MAC, SNAT_IP = "fa:16:3e:00:00:03", "10.0.0.3"
TABLE = 0x10000 + zone(1001)


def snat_ported(*events: Envelope) -> list[Envelope]:
    """h1 (the SNAT host, first by name) and h2 with a port each, bound, on n-1, whose router
    interface has a SNAT port."""
    added = RouterInterfaceAdded(
        network_id="n-1", gateway_ip="10.0.0.1", snat_mac=SNAT_MAC, snat_ip=SNAT_IP
    )
    bound = [
        ev(PortBound(host=h, network_id="n-1", tap="t", mac=m, ips=(ip,)), key)
        for key, h, m, ip in (
            ("p-1", HOST, "02:00:00:00:00:05", "10.0.0.5"),
            ("p-2", OTHER, "02:00:00:00:00:06", "10.0.0.6"),
        )
    ]
    return [
        *base(),
        ev(added, "r-1"),
        ev(NetworkAgentRegistered(vtep_ip=VTEP), HOST, None),
        ev(NetworkAgentRegistered(vtep_ip=OTHER_VTEP), OTHER, None),
        *port("p-1", "10.0.0.5"),
        *port("p-2", "10.0.0.6", host=OTHER),
        *bound,
        *events,
    ]


def plan(events: Sequence[Envelope], host: str = HOST) -> HostPlan:
    vtep = VTEP if host == HOST else OTHER_VTEP
    return host_plan(fold(events, host), vtep, names.DEFAULT_PREFIX)


def test_the_snat_host_has_a_snat_leg_and_lets_in_the_other_hosts_redirects() -> None:
    wanted = plan(snat_ported())
    (router,) = wanted.routers
    (leg,) = router.interfaces
    veth = names.router_interface_name("r-1", "n-1/snat")
    assert leg.snat == SnatLeg(veth, SNAT_MAC, "10.0.0.3/24", TABLE)
    assert leg.redirect is None
    assert router.snat_ip == "203.0.113.10"
    # The leg is one of the network's uplinks (its conntrack zone), like the gateway leg.
    assert (veth, zone(1001)) in wanted.filters().uplinks
    # Its tunnel lets in h2's redirect MAC with h2's addresses (no other), from h2's VTEP.
    (network,) = wanted.networks
    h2 = RemotePort(redirect_mac("r-1", "n-1", OTHER), OTHER_VTEP, ("10.0.0.6",))
    assert h2 in network.remotes
    assert (h2.mac, OTHER_VTEP) in network.fdb
    assert not any(r.routed for r in network.remotes)


def test_another_host_redirects_to_the_snat_port_with_a_mac_of_its_own() -> None:
    wanted = plan(snat_ported(), OTHER)
    (router,) = wanted.routers
    (leg,) = router.interfaces
    own = redirect_mac("r-1", "n-1", OTHER)
    veth = names.router_interface_name("r-1", "n-1/redirect")
    assert leg.redirect == Redirect(veth, own, SNAT_IP, SNAT_MAC, TABLE)
    assert leg.snat is None
    assert router.snat_ip is None
    assert own not in {leg.mac, redirect_mac("r-1", "n-1", HOST)}  # per host, not the gateway's
    (network,) = wanted.networks
    snat = RemotePort(SNAT_MAC, VTEP, (SNAT_IP,), routed=True)
    assert snat in network.remotes
    assert (SNAT_MAC, VTEP) in network.fdb


def test_without_a_snat_port_or_the_snat_host_on_the_network_nothing_is_redirected() -> None:
    # An interface recorded without a SNAT port (before they existed): as before.
    events = [e for e in snat_ported() if not isinstance(e.payload, RouterInterfaceAdded)]
    events.append(ev(RouterInterfaceAdded(network_id="n-1", gateway_ip="10.0.0.1"), "r-1"))
    for host in (HOST, OTHER):
        (leg,) = plan(events, host).routers[0].interfaces
        assert (leg.snat, leg.redirect) == (None, None)
        assert not any(r.routed for n in plan(events, host).networks for r in n.remotes)
    # Removed: the SNAT port goes with the interface.
    removed = snat_ported(ev(RouterInterfaceRemoved(network_id="n-1"), "r-1"))
    assert fold(removed).routers["r-1"].snat_ports == {}
    assert plan(removed, OTHER).networks[0].remotes == (
        RemotePort("02:00:00:00:00:05", VTEP, ("10.0.0.5",)),
    )


def test_the_nat_table_marks_what_is_redirected_and_the_answers_of_the_snat_leg() -> None:
    (snat_side,) = plan(snat_ported()).routers
    (other_side,) = plan(snat_ported(), OTHER).routers
    snat_peer = names.veth_peer(names.router_interface_name("r-1", "n-1/snat"))
    ext = names.veth_peer(snat_side.veth)
    script = nft_nat.render(snat_side)
    assert f'iifname {{ "{snat_peer}" }} ct mark set 0x2' in script
    assert f'iifname "{ext}" ct mark 0x2 meta mark set 0x2' in script
    assert "meta mark set 0x1" not in script
    gateway_peer = names.veth_peer(other_side.interfaces[0].veth)
    script = nft_nat.render(other_side)
    steer = f'iifname {{ "{gateway_peer}" }} ip saddr != @floated ip daddr != @networks'
    assert f"{steer} meta mark set 0x1" in script
    # What leaves by the external leg without a floating IP is still dropped there.
    assert f'oifname "{ext}" ip saddr != @floated drop' in script
    # Without a SNAT side, no mark chain: main's table as it was.
    plain = [e for e in snat_ported() if not isinstance(e.payload, RouterInterfaceAdded)]
    plain.append(ev(RouterInterfaceAdded(network_id="n-1", gateway_ip="10.0.0.1"), "r-1"))
    assert "chain steer" not in nft_nat.render(plan(plain).routers[0])
    # A new SNAT side is a new structure: the table is made whole again.
    assert nft_nat.render_changes(plan(plain).routers[0], snat_side) == nft_nat.render(snat_side)


def test_the_tunnel_lets_a_snat_port_carry_any_ipv4_source_and_nothing_else_does() -> None:
    snat = RemotePort(SNAT_MAC, VTEP, (SNAT_IP,), routed=True)
    guest = RemotePort("02:00:00:00:00:05", VTEP, ("10.0.0.5",))
    rules = nft_tunnels.add_tunnel("t", TunnelFilter("vx", 1001, (snat, guest)))
    (ip_rule,) = [
        r for r in rules if "ether type ip ether" in r or "ether type ip ether saddr !=" in r
    ]
    assert f"ether type ip ether saddr != {{ {SNAT_MAC} }} ether saddr . ip saddr != " in ip_rule
    # ARP: still only its own address.
    assert any(f"{SNAT_MAC} . {SNAT_MAC} . {SNAT_IP}" in r for r in rules if "arp" in r)
    plain = nft_tunnels.add_tunnel("t", TunnelFilter("vx", 1001, (guest,)))
    assert not any("ether type ip ether saddr != {" in r for r in plain)


def test_routing_rules_are_converged_from_what_the_namespace_has() -> None:
    (snat_side,) = plan(snat_ported()).routers
    (other_side,) = plan(snat_ported(), OTHER).routers
    assert netlink_snat.wanted_rules(snat_side) == {
        f"pref 1000 to 10.0.0.0/24 fwmark 0x2 lookup {TABLE}"
    }
    gateway_peer = names.veth_peer(other_side.interfaces[0].veth)
    wanted = netlink_snat.wanted_rules(other_side)
    assert wanted == {f"pref 1001 from 10.0.0.0/24 fwmark 0x1 iif {gateway_peer} lookup {TABLE}"}
    listing = json.dumps([
        {"priority": 0, "src": "all", "table": "local"},
        {"priority": 1000, "src": "all", "dst": "10.0.0.0", "dstlen": 24, "fwmark": "0x2",
         "table": str(TABLE)},
        {"priority": 1001, "src": "all", "fwmark": "0x1", "table": "main",
         "suppress_prefixlen": 0},
        {"priority": 32766, "src": "all", "table": "main"},
    ])  # fmt: skip
    assert netlink_snat.rule_changes(listing, wanted) == [
        f"rule del pref 1000 to 10.0.0.0/24 fwmark 0x2 lookup {TABLE}",
        "rule del pref 1001 fwmark 0x1 lookup main suppress_prefixlength 0",
        f"rule add pref 1001 from 10.0.0.0/24 fwmark 0x1 iif {gateway_peer} lookup {TABLE}",
    ]
    assert netlink_snat.rule_changes(listing, set()) == [
        f"rule del pref 1000 to 10.0.0.0/24 fwmark 0x2 lookup {TABLE}",
        "rule del pref 1001 fwmark 0x1 lookup main suppress_prefixlength 0",
    ]


def test_a_snapshot_keeps_the_snat_ports() -> None:
    state = fold(snat_ported())
    assert state.routers["r-1"].snat_ports == {"n-1": (SNAT_MAC, SNAT_IP)}
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state
