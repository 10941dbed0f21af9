"""The underlay's filters as planned and rendered: VXLAN only from known VTEPs, each carrying
only its own ports' frames into their networks (issue #13, the underlay)."""

from __future__ import annotations

from virga_events import Envelope
from virga_events.catalog.network import (
    NetworkAgentRegistered,
    PortBound,
    PortDeleted,
    PortHostAssigned,
    PortUnbound,
)
from virga_network.agent.core import names
from virga_network.agent.core.nft_rules import Marks, render, render_changes
from virga_network.agent.core.plumbing import FilterSet, RemotePort, TunnelFilter

from .test_agent_core import HOST, allocated, ev, fold, network, plan

VXLAN = names.vxlan_name("n-1")
A = RemotePort(mac="02:00:00:00:00:06", vtep="192.0.2.2", ips=("10.0.0.6",))
B = RemotePort(mac="02:00:00:00:00:07", vtep="192.0.2.3", ips=("10.0.0.7", "fd00::7"))


def bound(port: str, host: str, ip: str, net: str = "n-1") -> Envelope:
    mac = f"02:00:00:00:00:{int(ip.rsplit('.', 1)[1]):02x}"
    return ev(PortBound(host=host, network_id=net, tap="t", mac=mac, ips=(ip,)), port)


def registered(host: str, vtep: str) -> Envelope:
    return ev(NetworkAgentRegistered(vtep_ip=vtep), host, None)


BASE = [
    network(),
    network("n-2", vni=1002),
    allocated("p-1", "10.0.0.5"),
    ev(PortHostAssigned(host=HOST), "p-1"),
    registered("h2", "192.0.2.2"),
    allocated("p-2", "10.0.0.6"),
    bound("p-2", "h2", "10.0.0.6"),
    allocated("p-3", "10.0.0.8", net="n-2"),  # on a network this host does not have
    bound("p-3", "h2", "10.0.0.8", net="n-2"),
]


def test_the_tunnel_of_a_network_here_admits_the_remote_ports_from_their_hosts_vteps() -> None:
    filters = plan(fold(BASE)).filters()
    assert filters.tunnels == (TunnelFilter(vxlan=VXLAN, vni=1001, remotes=(A,)),)


def test_remote_ports_come_and_go_with_the_log() -> None:
    # A port on a host whose agent has not registered: no VTEP it may come from yet.
    later = [allocated("p-4", "10.0.0.9"), bound("p-4", "h3", "10.0.0.9")]
    state = fold(later, fold(BASE))
    assert plan(state).filters().tunnels[0].remotes == (A,)
    state = fold([registered("h3", "192.0.2.3")], state)
    h3 = RemotePort(mac="02:00:00:00:00:09", vtep="192.0.2.3", ips=("10.0.0.9",))
    assert plan(state).filters().tunnels[0].remotes == (A, h3)
    state = fold([ev(PortUnbound(host="h2"), "p-2"), ev(PortDeleted(), "p-4")], state)
    # A deleted port stays until its host unplugs it (its agent says so, as the FDB does).
    assert plan(state).filters().tunnels[0].remotes == (h3,)
    state = fold([ev(PortUnbound(host="h3"), "p-4")], state)
    assert plan(state).filters().tunnels[0].remotes == ()
    # A port of this host is never a remote one, wherever else it was reported.
    state = fold([bound("p-1", HOST, "10.0.0.5")], state)
    assert plan(state).filters().tunnels[0].remotes == ()


def test_vxlan_from_anywhere_but_a_known_vtep_for_that_id_and_mac_is_dropped() -> None:
    script = render(FilterSet(tunnels=(TunnelFilter(VXLAN, 1001, (A, B)),)), "vg", Marks())
    assert "type filter hook input priority filter; policy accept;" in script
    assert "udp dport 4789 jump underlay" in script
    assert "ip saddr . @th,96,24 . @th,176,48 @underlay4 accept" in script
    assert "ip6 saddr . @th,96,24 . @th,176,48 @underlay6 accept" in script
    underlay = script.split("chain underlay {")[1].split("}")[0].split()
    assert underlay[-1] == "drop"
    assert "add element inet virga_vg underlay4 { 192.0.2.2 . 1001 . 0x020000000006 }" in script
    assert "add element inet virga_vg underlay4 { 192.0.2.3 . 1001 . 0x020000000007 }" in script


def test_frames_from_the_tunnel_carry_a_remote_ports_mac_with_its_own_addresses() -> None:
    script = render(FilterSet(tunnels=(TunnelFilter(VXLAN, 1001, (A, B)),)), "vg", Marks())
    chain = f"add rule bridge virga_vg tunnel_{VXLAN}"
    assert f"{chain} ether saddr != {{ 02:00:00:00:00:06, 02:00:00:00:00:07 }} drop" in script
    assert (
        f"{chain} ether type ip ether saddr . ip saddr != "
        "{ 02:00:00:00:00:06 . 10.0.0.6, 02:00:00:00:00:07 . 10.0.0.7 } drop"
    ) in script
    assert "02:00:00:00:00:06 . 02:00:00:00:00:06 . 10.0.0.6" in script  # ARP sender
    assert "02:00:00:00:00:07 . 02:00:00:00:00:07 . 0.0.0.0" in script  # ARP probe
    assert "02:00:00:00:00:07 . fd00::7" in script
    assert "02:00:00:00:00:06 . fe80::ff:fe00:6" in script  # link-local of its MAC
    assert "02:00:00:00:00:06 . fd00::7" not in script  # an address of another port
    assert f"{chain} ether type ip6 icmpv6 type {{ nd-router-advert, nd-redirect }} drop" in script
    assert f"{chain} ether type != {{ arp, ip, ip6 }} drop" in script
    assert f"{chain} meta mark set 0 accept" in script
    assert f'in_ports {{ "{VXLAN}" : jump tunnel_{VXLAN} }}' in script
    # A Virga VXLAN interface without its chain lets nothing through.
    assert 'iifname vmap @in_ports\n    iifname "vgx*" drop' in script


def test_a_tunnel_without_remote_ports_lets_nothing_in() -> None:
    script = render(FilterSet(tunnels=(TunnelFilter(VXLAN, 1001),)), "vg", Marks())
    assert f"add rule bridge virga_vg tunnel_{VXLAN} drop" in script
    assert "underlay4 {" not in script.split("chain underlay")[1]


def test_changes_touch_only_the_tunnels_and_senders_that_changed() -> None:
    other = TunnelFilter(names.vxlan_name("n-2"), 1002, (A,))
    one = FilterSet(tunnels=(TunnelFilter(VXLAN, 1001, (A,)), other))
    two = FilterSet(tunnels=(TunnelFilter(VXLAN, 1001, (A, B)), other))
    marks = Marks()
    render(one, "vg", marks)
    assert render_changes(one, one, "vg", marks) == ""
    added = render_changes(one, two, "vg", marks)
    assert "add element inet virga_vg underlay4 { 192.0.2.3 . 1001 . 0x020000000007 }" in added
    assert f"flush chain bridge virga_vg tunnel_{VXLAN}" in added
    assert "192.0.2.2" not in added.replace("02:00:00:00:00:06", "")  # A's element stays
    assert other.vxlan not in added
    removed = render_changes(two, FilterSet(tunnels=(other,)), "vg", marks)
    assert f'delete element bridge virga_vg in_ports {{ "{VXLAN}" }}' in removed
    assert f"delete chain bridge virga_vg tunnel_{VXLAN}" in removed
    assert "delete element inet virga_vg underlay4 { 192.0.2.2 . 1001 . 0x020000000006 }" in (
        removed
    )
    assert "delete element inet virga_vg underlay4 { 192.0.2.3 . 1001 . 0x020000000007 }" in (
        removed
    )
    assert "1002" not in removed
