"""IPv6 on an edge as values: its router advertisement, and DHCPv6 (RFC 8415) answers.

The controller hands IPv6 addresses out of the pool in order, not from the MAC, so SLAAC
would give a guest an address anti-spoofing drops. The edge therefore advertises the prefix
on-link without autonomous configuration, with the M flag (ask DHCPv6) and the MTU, and
answers DHCPv6 with the port's address. A client is its link-local source address
(anti-spoofing ties it to the port's MAC), never its DUID. Pure.

The edge is no router: its advertisement's router lifetime is 0, unless a router is attached
to the network with a leg on this host; then the advertisement is sent in the router's name
(from its link-local address, which the router's leg holds) with a lifetime, and guests take
the router as their default route (`router_advert`'s `router_lifetime`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass

EDGE_ADDRESS6 = "fe80::a9fe:a9fe"
"""The edge's link-local address on an IPv6 network (OpenStack's metadata address)."""
SERVER_PORT6, CLIENT_PORT6 = 547, 546
ALL_DHCP = "ff02::1:2"
SOLICIT, ADVERTISE, REQUEST, CONFIRM, RENEW, REBIND, REPLY = range(1, 8)
INFORMATION_REQUEST = 11
_CLIENTID, _SERVERID, _IA_NA, _IAADDR, _RAPID_COMMIT = 1, 2, 3, 5, 14
LIFETIME = 86400
ROUTER_SOLICIT, ROUTER_ADVERT = 133, 134
ROUTER_LIFETIME = 1800
"""Seconds a guest keeps an attached router as its default (RFC 4861's default: three
times the longest interval between advertisements)."""


def router_advert(cidr: str, mtu: int, *, managed: bool = True, router_lifetime: int = 0) -> bytes:
    """The ICMPv6 router advertisement (the kernel fills in the checksum): the M flag when
    `managed` (the network has DHCP), the router lifetime (0: no default route; more only
    when sent from an attached router's address), the prefix on-link only, the MTU."""
    prefix = ipaddress.IPv6Network(cidr, strict=False)
    flags = 0x80 if managed else 0
    header = struct.pack("!BBHBBHII", ROUTER_ADVERT, 0, 0, 64, flags, router_lifetime, 0, 0)
    prefix_info = (
        struct.pack("!BBBBIII", 3, 4, prefix.prefixlen, 0x80, LIFETIME, LIFETIME, 0)
        + prefix.network_address.packed
    )
    return header + prefix_info + struct.pack("!BBHI", 5, 1, 0, mtu)


def mac_of_link_local(address: str) -> str | None:
    """The MAC a modified EUI-64 link-local address was made from, else None."""
    ip = ipaddress.IPv6Address(address.split("%")[0])
    raw = ip.packed
    if not ip.is_link_local or raw[11:13] != b"\xff\xfe":
        return None
    mac = bytes([raw[8] ^ 0x02, *raw[9:11], *raw[13:16]])
    return ":".join(f"{b:02x}" for b in mac)


def server_duid(network_id: str) -> bytes:
    """The edge's DUID (DUID-LL of a MAC derived from the network: stable across restarts)."""
    digest = hashlib.sha256(network_id.encode()).digest()
    return struct.pack("!HH", 3, 1) + bytes([digest[0] & 0xFE | 0x02, *digest[1:6]])


@dataclass(frozen=True, slots=True)
class Message6:
    kind: int
    xid: bytes
    client_id: bytes | None
    server_id: bytes | None
    iaid: bytes
    rapid_commit: bool


def _options(raw: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(raw):
        code, length = struct.unpack_from("!HH", raw, i)
        options.setdefault(code, raw[i + 4 : i + 4 + length])
        i += 4 + length
    return options


def parse6(data: bytes) -> Message6 | None:
    """A client's DHCPv6 message, or None if it is not one."""
    if len(data) < 4 or data[0] not in (SOLICIT, REQUEST, CONFIRM, RENEW, REBIND,
                                        INFORMATION_REQUEST):  # fmt: skip
        return None
    options = _options(data[4:])
    ia_na = options.get(_IA_NA, b"")
    return Message6(
        kind=data[0],
        xid=data[1:4],
        client_id=options.get(_CLIENTID),
        server_id=options.get(_SERVERID),
        iaid=ia_na[:4] if len(ia_na) >= 4 else b"\x00\x00\x00\x00",
        rapid_commit=_RAPID_COMMIT in options,
    )


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("!HH", code, len(value)) + value


def answer6(message: Message6, address: str, duid: bytes) -> bytes | None:
    """The edge's answer giving `address` (the caller's port's), or None: stay silent."""
    if message.client_id is None:
        return None
    if message.server_id is not None and message.server_id != duid:
        return None  # the client chose another server
    solicit = message.kind == SOLICIT
    kind = ADVERTISE if solicit and not message.rapid_commit else REPLY
    options = _option(_CLIENTID, message.client_id) + _option(_SERVERID, duid)
    if kind == REPLY and solicit:
        options += _option(_RAPID_COMMIT, b"")
    if message.kind != INFORMATION_REQUEST:
        ia_address = ipaddress.IPv6Address(address).packed + struct.pack("!II", LIFETIME, LIFETIME)
        ia = message.iaid + struct.pack("!II", LIFETIME // 2, LIFETIME * 4 // 5)
        options += _option(_IA_NA, ia + _option(_IAADDR, ia_address))
    return bytes([kind]) + message.xid + options
