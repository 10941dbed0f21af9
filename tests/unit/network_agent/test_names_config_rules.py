"""Interface names, the agent's settings and the nftables script, as pure values."""

from __future__ import annotations

import pytest

from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import names
from virga_network.agent.core.nft_rules import Marks, link_local, render, render_changes
from virga_network.agent.core.plumbing import FilterRule, FilterSet, PortFilter


def test_names_are_short_stable_and_recognised_only_with_the_prefix() -> None:
    tap = names.tap_name("port-1", "vh4")
    assert tap == names.tap_name("port-1", "vh4")
    assert len(names.veth_peer(tap)) <= 15
    assert names.kind_of(tap, "vh4") == "t"
    assert names.kind_of(names.bridge_name("n", "vh4"), "vh4") == "b"
    assert names.kind_of(tap, "vg") is None
    assert names.kind_of("vh4tnothexdigit", "vh4") is None
    assert names.kind_of("eth0", "vh4") is None
    with pytest.raises(ValueError, match="prefix"):
        names.check_prefix("virga")


def test_settings_come_from_the_environment_and_bad_ones_stop_the_agent() -> None:
    config = NetworkAgentConfig.from_env(
        {"VIRGA_HOST": "h1", "VIRGA_VTEP_IP": "192.0.2.1", "VIRGA_NETWORK_TAP_KIND": "veth"}
    )
    assert (config.host, config.vtep_ip, config.tap_kind, config.prefix) == (
        "h1", "192.0.2.1", "veth", "vg",
    )  # fmt: skip
    with pytest.raises(SystemExit, match="VIRGA_VTEP_IP"):
        NetworkAgentConfig.from_env({"VIRGA_HOST": "h1"})
    with pytest.raises(SystemExit, match="does not appear to be an IPv4 or IPv6"):
        NetworkAgentConfig.from_env({"VIRGA_HOST": "h1", "VIRGA_VTEP_IP": "nowhere"})
    with pytest.raises(SystemExit, match="tap kind"):
        NetworkAgentConfig.from_env({"VIRGA_HOST": "h1", "VIRGA_VTEP_IP": "::1",
                              "VIRGA_NETWORK_TAP_KIND": "macvtap"})  # fmt: skip


def test_link_local_follows_modified_eui64() -> None:
    assert link_local("52:54:00:12:34:56") == "fe80::5054:ff:fe12:3456"


def test_the_script_pins_each_port_to_its_addresses_and_rules() -> None:
    port = PortFilter(
        tap="vgt0000000001",
        mac="02:00:00:00:00:01",
        ips=("10.0.0.5", "fd00::5"),
        zone=7,
        rules=(
            FilterRule(direction="ingress", protocol="tcp", port_min=80, port_max=90,
                       remote=("10.1.0.0/16",)),
            FilterRule(direction="ingress", remote=()),  # a group without ports: nobody
            FilterRule(direction="egress", ethertype="IPv6"),
        ),
    )  # fmt: skip
    script = render(FilterSet(ports=(port,), uplinks=(("vgx0000000001", 7),)), "vg", Marks())
    assert "ether saddr != 02:00:00:00:00:01 drop" in script
    assert "ip saddr != { 10.0.0.5 } drop" in script
    assert "arp saddr ip != { 10.0.0.5, 0.0.0.0 } drop" in script
    assert "ip6 saddr != { fd00::5, fe80::ff:fe00:1, :: } drop" in script
    assert "nd-router-advert" in script
    assert "meta nfproto ipv4 meta l4proto tcp th dport 80-90 ip saddr { 10.1.0.0/16 } accept" in (
        script
    )
    assert "meta nfproto ipv6 return" in script
    assert "meta nfproto ipv4 accept" not in script  # the empty group allows nothing
    assert '"vgx0000000001" : 7' in script


def test_a_port_without_ipv4_sends_no_ipv4() -> None:
    port = PortFilter(tap="vgt0000000001", mac="02:00:00:00:00:01", ips=("fd00::5",), zone=7)
    assert "ether type ip drop" in render(FilterSet(ports=(port,)), "vg", Marks())


def test_changes_touch_only_the_ports_that_changed() -> None:
    one = PortFilter(tap="vgt0000000001", mac="02:00:00:00:00:01", ips=("10.0.0.1",), zone=7)
    two = PortFilter(tap="vgt0000000002", mac="02:00:00:00:00:02", ips=("10.0.0.2",), zone=7)
    marks = Marks()
    render(FilterSet(ports=(one,)), "vg", marks)
    assert render_changes(FilterSet(ports=(one,)), FilterSet(ports=(one,)), "vg", marks) == ""
    added = render_changes(FilterSet(ports=(one,)), FilterSet(ports=(one, two)), "vg", marks)
    assert "vgt0000000002" in added
    assert "vgt0000000001" not in added
    assert marks.of == {"vgt0000000001": 1, "vgt0000000002": 2}
    removed = render_changes(FilterSet(ports=(one, two)), FilterSet(ports=(two,)), "vg", marks)
    assert "delete chain bridge virga_vg from_vgt0000000001" in removed
    assert "vgt0000000002" not in removed
    assert marks.of == {"vgt0000000002": 2}
