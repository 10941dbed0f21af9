"""Interface names derived from ids, so the agent finds (and touches) only what Virga named.

A Linux interface name has at most 15 characters. Every name is `<prefix><kind><10 hex>`:
the prefix (at most 3 characters, `vg` by default) marks it as Virga's, the kind letter says
what it is, and the hex digits are a hash of the network or port id, the same on every host
and after every restart. A veth peer (test guests) appends `p`, which still fits.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

DEFAULT_PREFIX = "vg"
Kind = Literal["b", "x", "t", "e", "r", "g", "i"]
"""b: a network's bridge, x: its VXLAN interface, t: a port's tap, e: the host end of its
edge's veth (and, with the host's name, the edge's namespace: `core.edge`); a router's
namespace (r, with the host's name), its external leg (g) and its leg on a network's bridge
(i, by both ids): `core.l3`. Routers' legs go with their namespace, so `kind_of`
knows only the first four."""
DIGITS = 10
_PREFIX = re.compile(r"[a-z][a-z0-9]{0,2}")


def check_prefix(prefix: str) -> str:
    """Return `prefix` if it can start Virga's interface names, else raise ValueError."""
    if _PREFIX.fullmatch(prefix) is None:
        raise ValueError(f"interface prefix must be 1-3 lowercase letters or digits: {prefix!r}")
    return prefix


def _name(prefix: str, kind: Kind, some_id: str) -> str:
    digest = hashlib.sha256(some_id.encode()).hexdigest()[:DIGITS]
    return f"{prefix}{kind}{digest}"


def bridge_name(network_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "b", network_id)


def vxlan_name(network_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "x", network_id)


def tap_name(port_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "t", port_id)


def edge_name(network_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "e", network_id)


def router_namespace(router_id: str, host: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{_name(prefix, 'r', router_id)}-{host}"


def router_external_name(router_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "g", router_id)


def router_interface_name(router_id: str, network_id: str, prefix: str = DEFAULT_PREFIX) -> str:
    return _name(prefix, "i", f"{router_id}/{network_id}")


def veth_peer(tap: str) -> str:
    """The guest end of a port made as a veth pair (the host end is named as the tap)."""
    return f"{tap}p"


def kind_of(name: str, prefix: str = DEFAULT_PREFIX) -> Kind | None:
    """The kind of a Virga-named interface, or None for any other name (never touched)."""
    rest = name[len(prefix) :]
    if not name.startswith(prefix) or len(rest) != DIGITS + 1:
        return None
    kind, digits = rest[0], rest[1:]
    if kind not in ("b", "x", "t", "e") or any(c not in "0123456789abcdef" for c in digits):
        return None
    return kind  # type: ignore[return-value]
