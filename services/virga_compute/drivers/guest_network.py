"""The libvirt <sysinfo> element that hands a guest its address through QEMU's fw_cfg.

No DHCP server runs on Virga's networks: the compute agent puts the port's address in the
domain definition, QEMU exposes it as the fw_cfg file `opt/org.virga/network`, and the guest
(Virga's image, or any guest that reads /sys/firmware/qemu_fw_cfg) configures its NIC from it.
The value reads `virga:ip=10.0.0.5/24;gw=10.0.0.1;mac=52:54:00:12:34:56;mtu=1450`.
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET

FW_CFG_NAME = "opt/org.virga/network"
"""Under /sys/firmware/qemu_fw_cfg/by_name/ in the guest; QEMU wants user names under opt/."""
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")


def network_config(
    address: str,
    prefix_length: int,
    gateway: str | None = None,
    *,
    mac: str | None = None,
    mtu: int | None = None,
    dns: str | None = None,
) -> str:
    """The `virga:key=value;...` string the guest parses; raises ValueError on bad input."""
    interface = ipaddress.ip_interface(f"{address}/{prefix_length}")
    parts = [f"ip={interface.with_prefixlen}"]
    if gateway is not None:
        router = ipaddress.ip_address(gateway)
        if router not in interface.network or router == interface.ip:
            raise ValueError(f"gateway {gateway} is not another address of {interface.network}")
        parts.append(f"gw={router}")
    if mac is not None:
        if _MAC.fullmatch(mac.lower()) is None:
            raise ValueError(f"bad MAC address {mac!r}")
        parts.append(f"mac={mac.lower()}")
    if mtu is not None:
        if not 576 <= mtu <= 65535:
            raise ValueError(f"MTU {mtu} out of range")
        parts.append(f"mtu={mtu}")
    if dns is not None:
        parts.append(f"dns={ipaddress.ip_address(dns)}")
    return "virga:" + ";".join(parts)


def sysinfo_element(
    address: str,
    prefix_length: int,
    gateway: str | None = None,
    *,
    mac: str | None = None,
    mtu: int | None = None,
    dns: str | None = None,
) -> ET.Element:
    """`<sysinfo type='fwcfg'><entry name='opt/org.virga/network'>…</entry></sysinfo>`.

    It is a child of <domain> and needs nothing else in the definition (no <smbios> mode).
    """
    sysinfo = ET.Element("sysinfo", {"type": "fwcfg"})
    entry = ET.SubElement(sysinfo, "entry", {"name": FW_CFG_NAME})
    entry.text = network_config(address, prefix_length, gateway, mac=mac, mtu=mtu, dns=dns)
    return sysinfo


def sysinfo_xml(
    address: str,
    prefix_length: int,
    gateway: str | None = None,
    *,
    mac: str | None = None,
    mtu: int | None = None,
    dns: str | None = None,
) -> str:
    """`sysinfo_element` as a string, to paste into a domain definition."""
    element = sysinfo_element(address, prefix_length, gateway, mac=mac, mtu=mtu, dns=dns)
    return ET.tostring(element, encoding="unicode")
