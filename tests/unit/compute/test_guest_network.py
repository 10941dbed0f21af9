"""The fw_cfg <sysinfo> element that carries a guest's address, as libvirt and the guest read it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from virga_compute.drivers.guest_network import FW_CFG_NAME, network_config, sysinfo_xml


def test_the_element_names_the_fw_cfg_file_the_guest_reads_and_holds_the_address() -> None:
    element = ET.fromstring(sysinfo_xml("10.0.0.5", 24, "10.0.0.1", mac="52:54:00:AB:CD:EF"))
    assert element.tag == "sysinfo"
    assert element.get("type") == "fwcfg"
    [entry] = element
    assert entry.get("name") == FW_CFG_NAME == "opt/org.virga/network"
    assert entry.text == "virga:ip=10.0.0.5/24;gw=10.0.0.1;mac=52:54:00:ab:cd:ef"


def test_gateway_mtu_and_dns_are_optional() -> None:
    assert network_config("192.168.7.9", 26) == "virga:ip=192.168.7.9/26"
    assert network_config("10.1.0.2", 16, mtu=1450, dns="10.1.0.1") == (
        "virga:ip=10.1.0.2/16;mtu=1450;dns=10.1.0.1"
    )


@pytest.mark.parametrize(
    ("address", "prefix", "gateway", "mac"),
    [
        ("10.0.0.5", 24, "10.0.1.1", None),  # gateway off the subnet
        ("10.0.0.5", 24, "10.0.0.5", None),  # gateway is the guest itself
        ("10.0.0.500", 24, None, None),
        ("10.0.0.5", 33, None, None),
        ("10.0.0.5", 24, None, "52:54:00:ab:cd"),
        ("10.0.0.5", 24, None, "52:54:00:ab:cd:ef;ip=1.2.3.4"),  # no smuggled keys
    ],
)
def test_bad_input_is_refused(
    address: str, prefix: int, gateway: str | None, mac: str | None
) -> None:
    with pytest.raises(ValueError, match=r"."):
        network_config(address, prefix, gateway, mac=mac)
