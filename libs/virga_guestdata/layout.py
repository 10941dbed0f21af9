"""The files of a config drive, as a pure function of what the guest should learn.

OpenStack's config drive (`config-2`): `openstack/latest/meta_data.json` (uuid, name,
hostname, public_keys, availability_zone), `user_data` (the tenant's bytes, verbatim),
`network_data.json` (links, networks, services) and `vendor_data.json`/`vendor_data2.json`.
NoCloud (`cidata`): `meta-data`, `user-data`, `network-config`. JSON is valid YAML, so the
NoCloud files are JSON too. Paths are relative to the ISO's root, always with `/`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

CONFIG_DRIVE_LABEL: Final = "config-2"
NOCLOUD_LABEL: Final = "cidata"
OPENSTACK: Final = "openstack/latest"


def _json(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, indent=1).encode() + b"\n"


def meta_data(
    uuid: str,
    name: str,
    *,
    hostname: str | None = None,
    public_keys: Mapping[str, str] | None = None,
    availability_zone: str = "nova",
) -> dict[str, Any]:
    """OpenStack's meta_data.json for one instance (`public_keys`: key name → OpenSSH key)."""
    return {
        "uuid": uuid,
        "name": name,
        "hostname": hostname or name,
        "public_keys": dict(public_keys or {}),
        "availability_zone": availability_zone,
        "launch_index": 0,
    }


def static_network_data(
    mac: str,
    address: str,
    gateway: str | None = None,
    *,
    dns: Sequence[str] = (),
    mtu: int | None = None,
) -> dict[str, Any]:
    """network_data.json for one NIC with a static IPv4 address (`address` as a.b.c.d/len)."""
    interface = ipaddress.ip_interface(address)
    link: dict[str, Any] = {"id": "eth0", "type": "phy", "ethernet_mac_address": mac.lower()}
    if mtu is not None:
        link["mtu"] = mtu
    network: dict[str, Any] = {
        "id": "network0",
        "type": "ipv4",
        "link": "eth0",
        "ip_address": str(interface.ip),
        "netmask": str(interface.netmask),
        "routes": [],
    }
    if gateway is not None:
        route = {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": gateway}
        network["routes"].append(route)
    services = [{"type": "dns", "address": server} for server in dns]
    return {"links": [link], "networks": [network], "services": services}


def config_drive_files(
    meta: Mapping[str, Any],
    user_data: bytes | None = None,
    network_data: Mapping[str, Any] | None = None,
    vendor_data: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The files of an OpenStack config drive (label `config-2`): path → content."""
    if not meta.get("uuid"):
        raise ValueError("meta_data needs the instance's uuid (cloud-init's instance-id)")
    files = {
        f"{OPENSTACK}/meta_data.json": _json(meta),
        f"{OPENSTACK}/network_data.json": _json(network_data or {}),
        f"{OPENSTACK}/vendor_data.json": _json(vendor_data or {}),
        f"{OPENSTACK}/vendor_data2.json": _json({}),
    }
    if user_data is not None:
        files[f"{OPENSTACK}/user_data"] = bytes(user_data)
    return files


def nocloud_files(
    meta: Mapping[str, Any],
    user_data: bytes | None = None,
    network_config: Mapping[str, Any] | None = None,
) -> dict[str, bytes]:
    """The files of a NoCloud seed (label `cidata`) for the same facts as `meta_data`."""
    if not meta.get("uuid"):
        raise ValueError("meta_data needs the instance's uuid (cloud-init's instance-id)")
    document = {"instance-id": meta["uuid"], "local-hostname": meta.get("hostname", "")}
    files = {"meta-data": _json(document), "user-data": bytes(user_data or b"")}
    if network_config is not None:
        files["network-config"] = _json(network_config)
    return files
