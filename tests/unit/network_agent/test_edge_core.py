"""The edge's pure parts: the metadata layouts, who a caller is, and DHCP answers."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import json
import struct

from virga_events.catalog.network import instance_port_id
from virga_guestdata.metadata import GuestFacts, GuestNic, document, openstack_files
from virga_network.agent.core import dhcp, dhcpv6
from virga_network.agent.core.edge import EdgeSettings, dhcp_lease, guest_facts
from virga_network.agent.core.model import (
    InstanceRecord,
    NetworkAgentState,
    NetworkRecord,
    PortRecord,
)
from virga_network.agent.core.nft_rules import Marks, render
from virga_network.agent.core.plumbing import FilterSet, PortFilter

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey a@b"
FACTS = GuestFacts(
    instance_id="i-1", name="web 1", hostname="web-1", project_id="t-1",
    availability_zone="az1", key_name="mine", public_keys=(KEY,), user_data=b"#cloud-config\n",
    nic=GuestNic(mac="02:00:00:00:00:05", ips=("10.0.0.5",), cidr="10.0.0.0/24",
                 gateway="10.0.0.1", port_id="p-1", mtu=1450),
    dns_servers=("192.0.2.53",),
)  # fmt: skip


def test_openstack_layout_has_what_cloud_init_reads() -> None:
    meta = json.loads(document(FACTS, "/openstack/latest/meta_data.json") or b"")
    assert meta["uuid"] == "i-1"
    assert meta["hostname"] == "web-1"
    assert meta["name"] == "web 1"
    assert meta["public_keys"] == {"mine": KEY}
    assert meta["availability_zone"] == "az1"
    assert meta["project_id"] == "t-1"
    assert document(FACTS, "/openstack/latest/user_data") == b"#cloud-config\n"
    assert document(FACTS, "/openstack/latest/vendor_data2.json") == b"{}"
    assert b"latest" in (document(FACTS, "/openstack/") or b"")
    network = json.loads(document(FACTS, "/openstack/2018-08-27/network_data.json") or b"")
    assert network["links"][0]["mtu"] == 1450
    assert network["networks"][0]["netmask"] == "255.255.255.0"
    assert network["networks"][0]["routes"][0]["gateway"] == "10.0.0.1"
    assert network["services"] == [{"type": "dns", "address": "192.0.2.53"}]
    assert document(FACTS, "/openstack/1999-01-01/meta_data.json") is None


def test_no_user_data_is_404_in_both_layouts() -> None:
    facts = dataclasses.replace(FACTS, user_data=None)
    assert document(facts, "/openstack/latest/user_data") is None
    assert document(facts, "/latest/user-data") is None
    assert "user_data" not in openstack_files(facts)


def test_ec2_layout() -> None:
    assert document(FACTS, "/latest/meta-data/instance-id") == b"i-1"
    assert document(FACTS, "/latest/meta-data/hostname") == b"web-1"
    assert document(FACTS, "/latest/meta-data/local-ipv4") == b"10.0.0.5"
    assert document(FACTS, "/latest/meta-data/public-keys/") == b"0=mine"
    assert document(FACTS, "/latest/meta-data/public-keys/0/openssh-key") == KEY.encode()
    assert b"instance-id" in (document(FACTS, "/latest/meta-data/") or b"")
    assert document(FACTS, "/latest/user-data") == b"#cloud-config\n"
    assert document(FACTS, "/latest/meta-data/nothing") is None


def _state() -> NetworkAgentState:
    state = NetworkAgentState("h1")
    state.networks["n-a"] = NetworkRecord("n-a", "t-a", 1, "10.0.0.0/24", "10.0.0.1")
    state.networks["n-b"] = NetworkRecord("n-b", "t-b", 2, "10.0.0.0/24", "10.0.0.1")
    for tenant, net, host in (("t-a", "n-a", "h1"), ("t-b", "n-b", "h1"), ("t-c", "n-a", "h2")):
        instance = f"i-{tenant}"
        state.instances[instance] = InstanceRecord(
            instance, tenant, instance, user_data=base64.b64encode(tenant.encode()).decode()
        )
        port = instance_port_id(instance)
        state.ports[port] = PortRecord(
            port, tenant, net, f"02:00:00:00:00:0{len(state.ports)}", ("10.0.0.5",), host=host
        )
    return state


def test_a_caller_is_its_network_and_address_on_this_host_only() -> None:
    state, settings = _state(), EdgeSettings()
    a = guest_facts(state, "n-a", "10.0.0.5", settings)
    b = guest_facts(state, "n-b", "10.0.0.5", settings)
    assert a is not None
    assert b is not None
    assert (a.instance_id, a.user_data) == ("i-t-a", b"t-a")
    assert (b.instance_id, b.user_data) == ("i-t-b", b"t-b")
    assert guest_facts(state, "n-a", "10.0.0.6", settings) is None  # nobody's address
    assert guest_facts(state, "n-c", "10.0.0.5", settings) is None  # no such network here
    # t-c's port (same address, other host) is answered by its own host, not this one.
    assert dhcp_lease(state, "n-a", "02:00:00:00:00:02", settings) is None


def _message(kind: int, mac: str, requested: str | None = None, flags: int = 0) -> bytes:
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, 0x1234, 0, flags, bytes(4), bytes(4),
        bytes(4), bytes(4), bytes.fromhex(mac.replace(":", "")) + bytes(10), bytes(64), bytes(128),
    )  # fmt: skip
    options = bytes([53, 1, kind])
    if requested is not None:
        options += bytes([50, 4]) + bytes(int(p) for p in requested.split("."))
    return header + b"\x63\x82\x53\x63" + options + b"\xff"


def _options(packet: bytes) -> dict[int, bytes]:
    return dhcp._options(packet[240:])


def test_dhcp_offers_and_acks_the_ports_address_with_mtu_router_and_hostname() -> None:
    state = _state()
    state.instances["i-t-a"].hostname = "web-a"
    lease = dhcp_lease(state, "n-a", "02:00:00:00:00:00", EdgeSettings(underlay_mtu=9000))
    assert lease is not None
    discover = dhcp.parse(_message(dhcp.DISCOVER, "02:00:00:00:00:00", flags=0x8000))
    assert discover is not None
    offer = dhcp.answer(discover, lease)
    assert offer is not None
    assert offer.to == "255.255.255.255"  # the client asked for a broadcast
    assert offer.packet[16:20] == bytes([10, 0, 0, 5])
    options = _options(offer.packet)
    assert options[53] == bytes([dhcp.OFFER])
    assert options[26] == struct.pack("!H", 8950)
    assert options[3] == bytes([10, 0, 0, 1])
    assert options[12] == b"web-a"
    assert 6 not in options  # no DNS servers set
    assert options[121] == bytes([32, 169, 254, 169, 254, 0, 0, 0, 0, 0, 10, 0, 0, 1])
    request = dhcp.parse(_message(dhcp.REQUEST, "02:00:00:00:00:00", "10.0.0.5"))
    assert request is not None
    ack = dhcp.answer(request, lease)
    assert ack is not None
    assert _options(ack.packet)[53] == bytes([dhcp.ACK])
    assert ack.to == "10.0.0.5"
    wrong = dhcp.parse(_message(dhcp.REQUEST, "02:00:00:00:00:00", "10.0.0.9"))
    assert wrong is not None
    nak = dhcp.answer(wrong, lease)
    assert nak is not None
    assert _options(nak.packet)[53] == bytes([dhcp.NAK])
    other = dhcp.parse(_message(dhcp.DISCOVER, "02:00:00:00:00:09"))
    assert other is not None
    assert dhcp.answer(other, lease) is None  # another MAC's message never gets this lease
    assert dhcp.parse(b"garbage") is None


def test_a_ports_filters_let_dhcp_through_exactly_and_never_let_it_answer() -> None:
    port = PortFilter(tap="vgt0000000001", mac="02:00:00:00:00:01", ips=("10.0.0.5",), zone=7)
    script = render(FilterSet(ports=(port,)), "vg", Marks())
    spoof = [line for line in script.splitlines() if "from_vgt0000000001 " in line]
    rules = [line.split("from_vgt0000000001 ", 1)[1] for line in spoof if "add rule" in line]
    dhcp_client = (
        "ether type ip ether daddr ff:ff:ff:ff:ff:ff ip saddr 0.0.0.0 ip daddr 255.255.255.255"
        " udp sport 68 udp dport 67 meta mark set 0x1 accept"
    )
    # Before the exception: no DHCP answers, no DHCP for another MAC; after it: own address.
    order = [
        "ether type ip udp sport 67 drop",
        "ether type ip udp dport 67 @th,288,48 != 0x020000000001 drop",
        dhcp_client,
        "ether type ip ip saddr != { 10.0.0.5 } drop",
    ]
    assert [rules.index(rule) for rule in order] == sorted(rules.index(rule) for rule in order)
    assert "ether type ip6 udp sport 547 drop" in rules
    v6_only = PortFilter(tap="vgt0000000002", mac="02:00:00:00:00:02", ips=("fd00::5",), zone=7)
    assert "0.0.0.0 ip daddr" not in render(FilterSet(ports=(v6_only,)), "vg", Marks())
    ingress = [line for line in script.splitlines() if "ingress_vgt0000000001 " in line]
    assert any("ip saddr 169.254.169.254 udp sport 67 udp dport 68 accept" in r for r in ingress)


def test_dhcpv6_gives_the_port_its_address_and_the_advertisement_its_mtu() -> None:
    assert dhcpv6.mac_of_link_local("fe80::ff:fe00:5") == "02:00:00:00:00:05"
    assert dhcpv6.mac_of_link_local("fe80::1") is None  # not made from a MAC
    assert dhcpv6.mac_of_link_local("fd00::ff:fe00:5") is None  # not link-local
    duid = dhcpv6.server_duid("n-1")
    client = struct.pack("!HH", 1, 4) + b"duid"
    iaid = struct.pack("!HH", 3, 12) + b"\x00\x00\x00\x07" + bytes(8)
    solicit = dhcpv6.parse6(bytes([dhcpv6.SOLICIT, 1, 2, 3]) + client + iaid)
    assert solicit is not None
    advertise = dhcpv6.answer6(solicit, "fd00::11", duid)
    assert advertise is not None
    assert advertise[:4] == bytes([dhcpv6.ADVERTISE, 1, 2, 3])
    assert ipaddress.IPv6Address("fd00::11").packed in advertise
    assert b"\x00\x00\x00\x07" in advertise  # the client's IAID, echoed
    other = struct.pack("!HH", 2, 4) + b"else"  # a REQUEST for another server
    request = dhcpv6.parse6(bytes([dhcpv6.REQUEST, 1, 2, 3]) + client + other + iaid)
    assert request is not None
    assert dhcpv6.answer6(request, "fd00::11", duid) is None
    advert = dhcpv6.router_advert("fd00:c::/64", 1450)
    assert advert[0] == dhcpv6.ROUTER_ADVERT
    assert advert[5] == 0x80  # managed: ask DHCPv6
    assert advert[6:8] == b"\x00\x00"  # router lifetime 0: the edge is no router
    # Sent in an attached router's name: a lifetime, so guests take it as their default.
    routed = dhcpv6.router_advert("fd00:c::/64", 1450, router_lifetime=dhcpv6.ROUTER_LIFETIME)
    assert routed[6:8] == struct.pack("!H", 1800)
    assert routed[8:] == advert[8:]
    assert advert[-4:] == struct.pack("!I", 1450)


def test_a_network_without_dhcp_gets_no_lease_but_its_metadata_configures_it_statically() -> None:
    state, settings = _state(), EdgeSettings()
    mac = state.ports[instance_port_id("i-t-a")].mac
    assert mac is not None
    assert dhcp_lease(state, "n-a", mac, settings) is not None
    facts = guest_facts(state, "n-a", "10.0.0.5", settings)
    assert facts is not None
    network = json.loads(document(facts, "/openstack/latest/network_data.json") or b"")
    assert network["networks"] == [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0"}]
    state.networks["n-a"].dhcp = False
    assert dhcp_lease(state, "n-a", mac, settings) is None  # neither DHCPv4 nor DHCPv6
    facts = guest_facts(state, "n-a", "10.0.0.5", settings)
    assert facts is not None  # the metadata service still answers the guest
    network = json.loads(document(facts, "/openstack/latest/network_data.json") or b"")
    [static] = network["networks"]
    assert (static["type"], static["ip_address"], static["netmask"]) == (
        "ipv4", "10.0.0.5", "255.255.255.0"
    )  # fmt: skip
    assert static["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]
    # An IPv6 network without DHCP: the advertisement no longer says "ask DHCPv6".
    assert dhcpv6.router_advert("fd00:c::/64", 1450, managed=False)[5] == 0
