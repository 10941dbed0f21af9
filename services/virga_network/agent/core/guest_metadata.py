"""What a guest reads about itself, as documents: the OpenStack and EC2 metadata layouts.

Pure: `GuestFacts` in, bytes out. The metadata service (`agent/edge.py`) serves these paths
over HTTP; a config-drive writer lays the same OpenStack documents out on an ISO 9660 image
(`openstack_files`), so both always agree. Paths are those cloud-init's OpenStack and Ec2
datasources read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from typing import Any

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")  # fmt: skip
"""The OpenStack metadata versions served (each the same documents; cloud-init picks one)."""
EC2_VERSIONS = ("1.0", "2009-04-04", "latest")
EC2_META_KEYS = ("hostname", "instance-id", "local-hostname", "local-ipv4", "public-keys/")


@dataclass(frozen=True, slots=True)
class GuestFacts:
    """One guest as the log describes it: its instance's request and its port."""

    instance_id: str
    name: str
    hostname: str
    project_id: str | None
    availability_zone: str | None
    key_name: str | None
    public_keys: tuple[str, ...]
    user_data: bytes | None
    """Decoded; None when the tenant gave none."""
    port_id: str
    mac: str
    ips: tuple[str, ...]
    cidr: str
    gateway: str | None
    mtu: int
    dns_servers: tuple[str, ...] = ()


def decode_user_data(encoded: str | None) -> bytes | None:
    """The tenant's base64 user data as bytes; None if absent or not base64 (the gateway
    validated it, so that is an older or foreign event)."""
    if encoded is None:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None


def _keys(facts: GuestFacts) -> dict[str, str]:
    """key name -> key; a key beyond the first is named `<key_name>-<n>`."""
    base = facts.key_name or "key"
    return {base if i == 0 else f"{base}-{i}": key for i, key in enumerate(facts.public_keys)}


def meta_data(facts: GuestFacts) -> dict[str, Any]:
    """OpenStack's meta_data.json."""
    keys = _keys(facts)
    document: dict[str, Any] = {
        "uuid": facts.instance_id,
        "name": facts.name,
        "hostname": facts.hostname,
        "availability_zone": facts.availability_zone or "",
        "project_id": facts.project_id or "",
        "launch_index": 0,
        "public_keys": keys,
        "keys": [{"name": n, "type": "ssh", "data": k} for n, k in keys.items()],
        "meta": {},
    }
    return document


def network_data(facts: GuestFacts) -> dict[str, Any]:
    """OpenStack's network_data.json: the port's link, its addresses, the default route."""
    link = {
        "id": "tap0",
        "vif_id": facts.port_id,
        "type": "phy",
        "ethernet_mac_address": facts.mac,
        "mtu": facts.mtu,
    }
    subnet = ipaddress.ip_network(facts.cidr, strict=False)
    networks = []
    for index, ip in enumerate(a for a in facts.ips if ipaddress.ip_address(a) in subnet):
        v4 = subnet.version == 4
        entry: dict[str, Any] = {
            "id": f"network{index}",
            "type": "ipv4" if v4 else "ipv6",
            "link": "tap0",
            "ip_address": ip,
            "netmask": str(subnet.netmask) if v4 else str(subnet.prefixlen),
            "routes": [],
        }
        if facts.gateway:
            default = "0.0.0.0" if v4 else "::"
            entry["routes"] = [{"network": default, "netmask": default, "gateway": facts.gateway}]
        networks.append(entry)
    services = [{"type": "dns", "address": a} for a in facts.dns_servers]
    return {"links": [link], "networks": networks, "services": services}


def openstack_files(facts: GuestFacts, version: str = "latest") -> dict[str, bytes]:
    """The files of one OpenStack version directory (`openstack/<version>/...`), as a
    config drive holds them; `user_data` only when the tenant gave some."""
    files = {
        "meta_data.json": _json(meta_data(facts)),
        "network_data.json": _json(network_data(facts)),
        "vendor_data.json": b"{}",
        "vendor_data2.json": b"{}",
    }
    if facts.user_data is not None:
        files["user_data"] = facts.user_data
    return files


def _json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True).encode()


def _listing(items: list[str]) -> bytes:
    return "\n".join(items).encode()


def _ec2(facts: GuestFacts, rest: str) -> bytes | None:
    if rest == "user-data":
        return facts.user_data
    if rest in ("meta-data", "meta-data/"):
        return _listing(list(EC2_META_KEYS))
    keys = list(_keys(facts).items())
    values = {
        "meta-data/instance-id": facts.instance_id,
        "meta-data/hostname": facts.hostname,
        "meta-data/local-hostname": facts.hostname,
        "meta-data/local-ipv4": next((ip for ip in facts.ips if ":" not in ip), ""),
        "meta-data/public-keys": "\n".join(f"{i}={name}" for i, (name, _) in enumerate(keys)),
    }
    for i, (_, key) in enumerate(keys):
        values[f"meta-data/public-keys/{i}"] = "openssh-key"
        values[f"meta-data/public-keys/{i}/openssh-key"] = key
    value = values.get(rest.rstrip("/"))
    return None if value is None else value.encode()


def document(facts: GuestFacts, path: str) -> bytes | None:
    """The body served at `path` (the URL path, query removed), or None: 404."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return _listing(["latest", "openstack"] + [v for v in EC2_VERSIONS if v != "latest"])
    if parts[0] == "openstack":
        if len(parts) == 1:
            return _listing(list(OPENSTACK_VERSIONS))
        if parts[1] not in OPENSTACK_VERSIONS:
            return None
        files = openstack_files(facts, parts[1])
        if len(parts) == 2:
            return _listing(sorted(files))
        return files.get(parts[2]) if len(parts) == 3 else None
    if parts[0] in EC2_VERSIONS:
        if len(parts) == 1:
            return _listing(["meta-data/", "user-data"] if facts.user_data else ["meta-data/"])
        return _ec2(facts, "/".join(parts[1:]) + ("/" if path.endswith("/") else ""))
    return None
