"""What a guest reads about itself, as documents: the OpenStack and EC2 metadata layouts.

Pure: `GuestFacts` in, bytes out, and the one source of both: the network agent's metadata
service serves `document(facts, path)` at 169.254.169.254, and the compute agent's config
drive lays `openstack_files(facts)` out under `openstack/latest/` (`layout`), so a guest
reads the same bytes either way. Paths are those cloud-init's OpenStack and Ec2 datasources
read. A fact a writer does not know (a NIC's MTU, the DNS servers, the port id, the project)
is None or empty and left out of the documents.

Public keys go by the keypair's name (`default` when the request named none, as Nova's
`public_keys` map always has a name), a key beyond the first by `<name>-<n>`. The NIC's link
is `tap0` (Nova names a link after its tap; the guest names its interface by MAC).
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Final

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")  # fmt: skip
"""The OpenStack metadata versions served (each the same documents; cloud-init picks one)."""
EC2_VERSIONS = ("1.0", "2009-04-04", "latest")
EC2_META_KEYS = ("hostname", "instance-id", "local-hostname", "local-ipv4", "public-keys/")
DEFAULT_KEY_NAME: Final = "default"
LINK_ID: Final = "tap0"


@dataclass(frozen=True, slots=True)
class GuestNic:
    """The guest's NIC: its port's MAC and addresses on its network."""

    mac: str
    ips: tuple[str, ...]
    """The port's addresses; those inside `cidr` are configured statically."""
    cidr: str
    gateway: str | None = None
    port_id: str | None = None
    """network_data.json's `vif_id`; None: left out."""
    mtu: int | None = None
    """None: left out (the guest keeps its default or what DHCP says)."""
    dhcp: bool = False
    """The network's DHCP answers this port: its addresses are `ipv4_dhcp` (or
    `ipv6_dhcpv6-stateful`) in network_data.json, as Nova writes them for a subnet with a DHCP
    server, so the guest keeps taking them, and the on-link route to 169.254.169.254 (option
    121), from DHCP. False: configured statically (a config drive, which must work without)."""


@dataclass(frozen=True, slots=True)
class GuestFacts:
    """One guest as the log describes it: its instance's request and its NIC."""

    instance_id: str
    name: str
    hostname: str
    availability_zone: str | None = None
    project_id: str | None = None
    key_name: str | None = None
    public_keys: tuple[str, ...] = ()
    user_data: bytes | None = None
    """Decoded; None when the tenant gave none."""
    nic: GuestNic | None = None
    """None: network_data.json is empty (the guest is told nothing of its network)."""
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


def keys_by_name(facts: GuestFacts) -> dict[str, str]:
    """key name -> key: the first under the keypair's name (`default` when unnamed), any
    further ones under `<name>-<n>`."""
    base = facts.key_name or DEFAULT_KEY_NAME
    return {base if i == 0 else f"{base}-{i}": key for i, key in enumerate(facts.public_keys)}


def meta_data(facts: GuestFacts) -> dict[str, Any]:
    """OpenStack's meta_data.json."""
    keys = keys_by_name(facts)
    document: dict[str, Any] = {
        "uuid": facts.instance_id,
        "name": facts.name,
        "hostname": facts.hostname,
        "launch_index": 0,
        "public_keys": keys,
        "keys": [{"name": n, "type": "ssh", "data": k} for n, k in keys.items()],
        "meta": {},
    }
    if facts.availability_zone is not None:
        document["availability_zone"] = facts.availability_zone
    if facts.project_id is not None:
        document["project_id"] = facts.project_id
    return document


def network_data(facts: GuestFacts) -> dict[str, Any]:
    """OpenStack's network_data.json: the NIC's link, its addresses, the default route and
    the DNS servers; empty without a NIC."""
    nic = facts.nic
    if nic is None:
        return {}
    link: dict[str, Any] = {"id": LINK_ID, "type": "phy", "ethernet_mac_address": nic.mac.lower()}
    if nic.port_id is not None:
        link["vif_id"] = nic.port_id
    if nic.mtu is not None:
        link["mtu"] = nic.mtu
    subnet = ipaddress.ip_network(nic.cidr, strict=False)
    networks = []
    for index, ip in enumerate(a for a in nic.ips if ipaddress.ip_address(a) in subnet):
        v4 = subnet.version == 4
        if nic.dhcp:
            kind = "ipv4_dhcp" if v4 else "ipv6_dhcpv6-stateful"
            networks.append({"id": f"network{index}", "type": kind, "link": LINK_ID})
            continue
        entry: dict[str, Any] = {
            "id": f"network{index}",
            "type": "ipv4" if v4 else "ipv6",
            "link": LINK_ID,
            "ip_address": ip,
            "netmask": str(subnet.netmask) if v4 else str(subnet.prefixlen),
            "routes": [],
        }
        if nic.gateway:
            default = "0.0.0.0" if v4 else "::"
            entry["routes"] = [{"network": default, "netmask": default, "gateway": nic.gateway}]
        networks.append(entry)
    services = [{"type": "dns", "address": a} for a in facts.dns_servers]
    return {"links": [link], "networks": networks, "services": services}


def openstack_files(facts: GuestFacts) -> dict[str, bytes]:
    """The files of an OpenStack version directory (`openstack/<version>/...`; every version
    holds the same), as the metadata service serves them and a config drive holds them;
    `user_data` only when the tenant gave some."""
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
    keys = list(keys_by_name(facts).items())
    ips = () if facts.nic is None else facts.nic.ips
    values = {
        "meta-data/instance-id": facts.instance_id,
        "meta-data/hostname": facts.hostname,
        "meta-data/local-hostname": facts.hostname,
        "meta-data/local-ipv4": next((ip for ip in ips if ":" not in ip), ""),
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
        files = openstack_files(facts)
        if len(parts) == 2:
            return _listing(sorted(files))
        return files.get(parts[2]) if len(parts) == 3 else None
    if parts[0] in EC2_VERSIONS:
        if len(parts) == 1:
            return _listing(["meta-data/", "user-data"] if facts.user_data else ["meta-data/"])
        return _ec2(facts, "/".join(parts[1:]) + ("/" if path.endswith("/") else ""))
    return None
