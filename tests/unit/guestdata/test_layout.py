"""The config drive's and NoCloud seed's files, as cloud-init reads them: the same documents
the metadata service serves, from the same facts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from virga_guestdata import (
    GuestFacts,
    GuestNic,
    config_drive_files,
    document,
    meta_data,
    network_data,
    nocloud_files,
    openstack_files,
)
from virga_guestdata.metadata import OPENSTACK_VERSIONS

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0 alice@laptop"
NIC = GuestNic(mac="52:54:00:AA:BB:CC", ips=("10.0.0.5",), cidr="10.0.0.0/24", gateway="10.0.0.1")
FACTS = GuestFacts(
    instance_id="9f1c",
    name="web 1",
    hostname="web-1",
    availability_zone="nova",
    key_name="alice",
    public_keys=(KEY,),
    user_data=b"#!/bin/sh\necho hi\n",
    nic=NIC,
)


def test_the_config_drive_holds_the_openstack_layout() -> None:
    files = config_drive_files(FACTS)
    assert sorted(files) == [
        "openstack/latest/meta_data.json",
        "openstack/latest/network_data.json",
        "openstack/latest/user_data",
        "openstack/latest/vendor_data.json",
        "openstack/latest/vendor_data2.json",
    ]
    read = json.loads(files["openstack/latest/meta_data.json"])
    assert read == {
        "uuid": "9f1c",
        "name": "web 1",
        "hostname": "web-1",
        "public_keys": {"alice": KEY},
        "keys": [{"name": "alice", "type": "ssh", "data": KEY}],
        "meta": {},
        "availability_zone": "nova",
        "launch_index": 0,
    }
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hi\n"
    assert json.loads(files["openstack/latest/vendor_data2.json"]) == {}


@pytest.mark.parametrize(
    "facts",
    [
        FACTS,
        dataclasses.replace(FACTS, user_data=None, nic=None, key_name=None),
        dataclasses.replace(
            FACTS,
            project_id="t-1",
            public_keys=(KEY, "ssh-ed25519 AAAA second"),
            nic=dataclasses.replace(NIC, port_id="p-1", mtu=1450),
            dns_servers=("192.0.2.53",),
        ),
    ],
)
def test_the_config_drive_and_the_metadata_service_say_the_same(facts: GuestFacts) -> None:
    """One source: the drive's openstack/latest files are, byte for byte, what the metadata
    service serves under every OpenStack version for the same facts, and nothing more."""
    drive = config_drive_files(facts)
    assert drive == {f"openstack/latest/{n}": b for n, b in openstack_files(facts).items()}
    for version in OPENSTACK_VERSIONS:
        listing = (document(facts, f"/openstack/{version}/") or b"").decode().split("\n")
        assert sorted(f"openstack/latest/{name}" for name in listing) == sorted(drive)
        for path, content in drive.items():
            name = path.removeprefix("openstack/latest/")
            assert document(facts, f"/openstack/{version}/{name}") == content


def test_network_data_names_link_address_route_and_mtu() -> None:
    nic = GuestNic("52:54:00:AA:BB:CC", ("192.0.2.7",), "192.0.2.0/28", "192.0.2.1", mtu=1450)
    data = network_data(dataclasses.replace(FACTS, nic=nic, dns_servers=("192.0.2.53",)))
    assert data["links"] == [
        {"id": "tap0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:cc", "mtu": 1450}
    ]
    [network] = data["networks"]
    assert network["link"] == "tap0"
    assert (network["type"], network["ip_address"], network["netmask"]) == (
        "ipv4",
        "192.0.2.7",
        "255.255.255.240",
    )
    assert network["routes"] == [
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}
    ]
    assert data["services"] == [{"type": "dns", "address": "192.0.2.53"}]
    no_gateway = dataclasses.replace(FACTS, nic=dataclasses.replace(NIC, gateway=None))
    assert network_data(no_gateway)["networks"][0]["routes"] == []


def test_a_nic_that_dhcp_answers_takes_its_addresses_by_dhcp() -> None:
    """As Nova writes it for a subnet with a DHCP server: a static configuration would drop
    the on-link route to 169.254.169.254 DHCP gives, and the metadata service with it (a
    Debian guest lost it so)."""
    v4 = GuestNic("52:54:00:aa:bb:cc", ("192.0.2.7",), "192.0.2.0/28", "192.0.2.1", dhcp=True)
    v6 = GuestNic("52:54:00:aa:bb:cc", ("2001:db8::7",), "2001:db8::/64", dhcp=True)
    for nic, kind in ((v4, "ipv4_dhcp"), (v6, "ipv6_dhcpv6-stateful")):
        data = network_data(dataclasses.replace(FACTS, nic=nic))
        assert data["networks"] == [{"id": "network0", "type": kind, "link": "tap0"}]


def test_what_a_writer_does_not_know_is_left_out() -> None:
    facts = dataclasses.replace(FACTS, availability_zone=None)
    meta = meta_data(facts)
    assert "project_id" not in meta
    assert "availability_zone" not in meta
    [link] = network_data(facts)["links"]
    assert "mtu" not in link
    assert "vif_id" not in link
    assert network_data(facts)["services"] == []


def test_keys_go_by_the_keypairs_name_and_a_nameless_one_by_default() -> None:
    two = dataclasses.replace(FACTS, key_name="k", public_keys=("a", "b"))
    assert meta_data(two)["public_keys"] == {"k": "a", "k-1": "b"}
    assert document(two, "/latest/meta-data/public-keys") == b"0=k\n1=k-1"
    nameless = dataclasses.replace(FACTS, key_name=None, public_keys=("a",))
    assert meta_data(nameless)["public_keys"] == {"default": "a"}
    assert meta_data(dataclasses.replace(FACTS, public_keys=()))["public_keys"] == {}


def test_without_user_data_or_a_nic_there_is_no_user_data_and_no_network() -> None:
    files = config_drive_files(dataclasses.replace(FACTS, user_data=None, nic=None))
    assert "openstack/latest/user_data" not in files
    assert json.loads(files["openstack/latest/network_data.json"]) == {}


def test_the_instance_uuid_is_required() -> None:
    with pytest.raises(ValueError, match="uuid"):
        config_drive_files(dataclasses.replace(FACTS, instance_id=""))
    with pytest.raises(ValueError, match="uuid"):
        nocloud_files(dataclasses.replace(FACTS, instance_id=""))


def test_the_nocloud_seed_carries_the_same_facts() -> None:
    facts = GuestFacts("u2", "db", "db-1", user_data=b"#cloud-config\n")
    files = nocloud_files(facts, {"version": 2, "ethernets": {}})
    assert json.loads(files["meta-data"]) == {"instance-id": "u2", "local-hostname": "db-1"}
    assert files["user-data"] == b"#cloud-config\n"
    assert json.loads(files["network-config"]) == {"version": 2, "ethernets": {}}
    assert "network-config" not in nocloud_files(facts)
    assert nocloud_files(GuestFacts("u2", "db", "db-1"))["user-data"] == b""


def test_the_same_facts_give_the_same_bytes() -> None:
    assert config_drive_files(FACTS) == config_drive_files(dataclasses.replace(FACTS))
