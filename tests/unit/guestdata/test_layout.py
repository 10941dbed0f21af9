"""The config drive's and NoCloud seed's files, as cloud-init reads them."""

from __future__ import annotations

import json

import pytest

from virga_guestdata import (
    config_drive_files,
    meta_data,
    nocloud_files,
    static_network_data,
)

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHq0 alice@laptop"


def test_the_config_drive_holds_the_openstack_layout() -> None:
    meta = meta_data("9f1c", "web-1", public_keys={"alice": KEY})
    network = static_network_data("52:54:00:AA:BB:CC", "10.0.0.5/24", "10.0.0.1", mtu=1450)
    files = config_drive_files(meta, b"#!/bin/sh\necho hi\n", network)
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
        "name": "web-1",
        "hostname": "web-1",
        "public_keys": {"alice": KEY},
        "availability_zone": "nova",
        "launch_index": 0,
    }
    assert files["openstack/latest/user_data"] == b"#!/bin/sh\necho hi\n"
    assert json.loads(files["openstack/latest/vendor_data2.json"]) == {}


def test_static_network_data_names_link_address_route_and_mtu() -> None:
    data = static_network_data(
        "52:54:00:AA:BB:CC", "192.0.2.7/28", "192.0.2.1", dns=["192.0.2.53"], mtu=1450
    )
    assert data["links"] == [
        {"id": "eth0", "type": "phy", "ethernet_mac_address": "52:54:00:aa:bb:cc", "mtu": 1450}
    ]
    [network] = data["networks"]
    assert (network["type"], network["ip_address"], network["netmask"]) == (
        "ipv4",
        "192.0.2.7",
        "255.255.255.240",
    )
    assert network["routes"] == [
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"}
    ]
    assert data["services"] == [{"type": "dns", "address": "192.0.2.53"}]
    assert static_network_data("52:54:00:00:00:01", "10.0.0.2/24")["networks"][0]["routes"] == []


def test_without_user_data_there_is_no_user_data_file() -> None:
    files = config_drive_files(meta_data("u1", "a"))
    assert "openstack/latest/user_data" not in files
    assert json.loads(files["openstack/latest/network_data.json"]) == {}


def test_the_instance_uuid_is_required() -> None:
    with pytest.raises(ValueError, match="uuid"):
        config_drive_files({"name": "a"})
    with pytest.raises(ValueError, match="uuid"):
        nocloud_files({"name": "a"})


def test_the_nocloud_seed_carries_the_same_facts() -> None:
    meta = meta_data("u2", "db", hostname="db-1")
    files = nocloud_files(meta, b"#cloud-config\n", {"version": 2, "ethernets": {}})
    assert json.loads(files["meta-data"]) == {"instance-id": "u2", "local-hostname": "db-1"}
    assert files["user-data"] == b"#cloud-config\n"
    assert json.loads(files["network-config"]) == {"version": 2, "ethernets": {}}
    assert "network-config" not in nocloud_files(meta)


def test_the_same_facts_give_the_same_bytes() -> None:
    one = config_drive_files(meta_data("u3", "x", public_keys={"b": "k2", "a": "k1"}))
    two = config_drive_files(meta_data("u3", "x", public_keys={"a": "k1", "b": "k2"}))
    assert one == two
