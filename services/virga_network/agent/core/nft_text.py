"""Text pieces shared by the nftables renderers (`nft_rules`, `nft_tunnels`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def link_local(mac: str) -> str:
    """The IPv6 link-local address a guest derives from its MAC (modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    return str(ipaddress.IPv6Address(bytes([0xFE, 0x80, *([0] * 6), *eui])))


def nft_set(items: Iterable[str]) -> str:
    """An anonymous nft set of `items` (which must not be empty)."""
    return "{ " + ", ".join(items) + " }"


def split_ips(ips: Iterable[str]) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 addresses apart, in their order."""
    v4: list[str] = []
    v6: list[str] = []
    for ip in ips:
        (v6 if ipaddress.ip_address(ip).version == 6 else v4).append(ip)
    return v4, v6
