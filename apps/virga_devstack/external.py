"""The local stack's external network, as devstack's br-ex: a bridge in the host's own namespace
holding the external network's gateway address, so that the host itself plays "the internet".

Routers plug their external legs into the bridge (`host_interface`); the host reaches every
floating IP and router address through it, and is the routers' default gateway. `up` makes
the bridge and registers it as the external network `public` (`POST /v1/external-networks`),
both idempotent; `down --all` deletes the network if nothing holds its addresses and removes
the bridge.

The bridge is `<interface prefix>ext` (`vgext`): Virga's prefix, but none of the network
agent's own names (`vg<kind><10 hex digits>`), so no agent ever takes it for one of
its leftovers.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from virga_devstack import seed


@dataclass(frozen=True)
class ExternalSegment:
    """An external network made on this host: its bridge and the host's address on it."""

    bridge: str = "vgext"
    address: str = "203.0.113.1/24"
    """The host's address on the bridge (TEST-NET-3 by default): the network's gateway."""
    name: str = "public"
    first_pool_host: int = 10
    """Floating IPs and routers' addresses start at this host number; the ones below it stay
    free for the host's own use."""

    @property
    def cidr(self) -> str:
        return str(ipaddress.ip_interface(self.address).network)

    @property
    def gateway_ip(self) -> str:
        return str(ipaddress.ip_interface(self.address).ip)

    def body(self) -> dict[str, Any]:
        """The `POST /v1/external-networks` body that registers the segment."""
        network = ipaddress.ip_network(self.cidr)
        start = network.network_address + self.first_pool_host
        end = network.broadcast_address - 1
        return {
            "name": self.name,
            "cidr": self.cidr,
            "gateway_ip": self.gateway_ip,
            "host_interface": self.bridge,
            "allocation_pools": [{"start": str(start), "end": str(end)}],
        }


ADDRESS_SETTING = "VIRGA_DEVSTACK_EXTERNAL_ADDRESS"


def local(environ: Mapping[str, str] = os.environ) -> ExternalSegment:
    """The local stack's segment: the bridge `<interface prefix>ext` (`vgext`), the host's
    address from VIRGA_DEVSTACK_EXTERNAL_ADDRESS (203.0.113.1/24)."""
    prefix = environ.get("VIRGA_NETWORK_IFACE_PREFIX") or "vg"
    address = environ.get(ADDRESS_SETTING) or ExternalSegment.address
    ipaddress.ip_interface(address)  # a ValueError names a malformed setting
    return ExternalSegment(bridge=f"{prefix}ext", address=address)


class ExternalError(RuntimeError):
    """An `ip` command failed; the message holds its error output."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if check and result.returncode != 0:
        raise ExternalError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def bridge_exists(segment: ExternalSegment) -> bool:
    return _ip("link", "show", "dev", segment.bridge, check=False).returncode == 0


def ensure_bridge(segment: ExternalSegment) -> bool:
    """Make the bridge, up, with the host's address on it; whether this call made it."""
    made = not bridge_exists(segment)
    if made:
        _ip("link", "add", segment.bridge, "type", "bridge")
    # No IPv6 link-local address: the segment is IPv4 only, and quiet.
    _ip("link", "set", segment.bridge, "addrgenmode", "none", check=False)
    _ip("addr", "replace", segment.address, "dev", segment.bridge)
    _ip("link", "set", segment.bridge, "up")
    return made


def remove_bridge(segment: ExternalSegment) -> bool:
    """Delete the bridge (routers' legs on it are left unplugged); whether it existed."""
    if not bridge_exists(segment):
        return False
    _ip("link", "del", segment.bridge)
    return True


def find(api: str, token: str, segment: ExternalSegment) -> dict[str, Any] | None:
    """The external network registered under the segment's name, if any (not being deleted)."""
    _, page = seed._call(api, token, "GET", "/v1/external-networks?limit=200")
    for item in page.get("items", []):
        if item.get("name") == segment.name and item.get("status") not in ("DELETING", "DELETED"):
            found: dict[str, Any] = item
            return found
    return None


def register(api: str, token: str, segment: ExternalSegment) -> tuple[str, str]:
    """Register the segment as an external network unless it is: (its id, what was done)."""
    found = find(api, token, segment)
    if found is not None:
        if found.get("host_interface") not in (None, segment.bridge):
            return found["id"], f"already there, on {found['host_interface']}: {found['id']}"
        return found["id"], f"already there: {found['id']}"
    _, made = seed._call(
        api,
        token,
        "POST",
        "/v1/external-networks",
        body=json.dumps(segment.body()).encode(),
        headers={"Content-Type": "application/json"},
    )
    return made["id"], f"registered: {made['id']}"


def unregister(api: str, token: str, segment: ExternalSegment) -> str:
    """Delete the segment's external network; what was done (a 409: something holds its
    addresses, and it stays)."""
    found = find(api, token, segment)
    if found is None:
        return "not registered"
    try:
        seed._call(api, token, "DELETE", f"/v1/external-networks/{found['id']}")
    except seed.SeedError as error:
        if error.status != 409:
            raise
        return f"kept (floating IPs or routers hold its addresses): {error}"
    return f"deleted: {found['id']}"


def unregister_quietly(api: str, token: str, segment: ExternalSegment | None = None) -> str:
    """`unregister` the local segment, saying so if the gateway does not answer (the log
    keeps the network, and the next `up` finds it)."""
    segment = segment or local()
    try:
        return f"{segment.name!r} {unregister(api, token, segment)}"
    except seed.SeedError as error:
        return f"{segment.name!r} not deleted ({error})"


def take_down_bridge(everything: bool, segment: ExternalSegment | None = None) -> int:
    """`down`'s last step: remove the local segment's bridge if `everything` (`--all`), else
    say that it stays; the exit status (1: it could not be removed)."""
    segment = segment or local()
    try:
        removed = everything and remove_bridge(segment)
    except ExternalError as error:
        print(f"The bridge {segment.bridge} stays: {error}", file=sys.stderr)
        return 1
    if removed:
        print(f"==> removed the external network's bridge {segment.bridge}")
    elif bridge_exists(segment):
        print(f"The bridge {segment.bridge} stays, for the floating IPs (`make down ALL=1`).")
    return 0
