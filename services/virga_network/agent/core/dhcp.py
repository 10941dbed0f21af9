"""DHCPv4 (RFC 2131) as values: a client's message read from bytes, the edge's answer built.

Pure: the edge (`agent/edge.py`) receives, looks the client's MAC up in the log's fold
(`core.edge.dhcp_lease`) and sends what `answer` returns. Only fixed leases exist: an address
is the port's, so DISCOVER and REQUEST for it are answered and anything else is refused (NAK)
or ignored. Relays (giaddr) are not served: the edge sits on the guest's own segment.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

from virga_network.agent.core.edge import EDGE_ADDRESS, Lease

SERVER_PORT, CLIENT_PORT = 67, 68
LEASE_SECONDS = 86400
_MAGIC = b"\x63\x82\x53\x63"
_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
_BROADCAST_FLAG = 0x8000


@dataclass(frozen=True, slots=True)
class Message:
    """A client's DHCP message: what the edge needs of it."""

    kind: int
    xid: int
    flags: int
    ciaddr: str
    giaddr: str
    mac: str
    requested: str | None
    server_id: str | None


def parse(data: bytes) -> Message | None:
    """The client message in `data`, or None if it is not one (a reply, garbage)."""
    if len(data) < _HEADER.size + 4 or data[_HEADER.size : _HEADER.size + 4] != _MAGIC:
        return None
    op, htype, hlen, _, xid, _, flags, ciaddr, _, _, giaddr, chaddr, _, _ = _HEADER.unpack_from(
        data
    )
    if op != 1 or htype != 1 or hlen != 6:
        return None
    options = _options(data[_HEADER.size + 4 :])
    kind = options.get(53)
    if kind is None or len(kind) != 1:
        return None
    return Message(
        kind=kind[0],
        xid=xid,
        flags=flags,
        ciaddr=str(ipaddress.IPv4Address(ciaddr)),
        giaddr=str(ipaddress.IPv4Address(giaddr)),
        mac=":".join(f"{b:02x}" for b in chaddr[:6]),
        requested=_address(options.get(50)),
        server_id=_address(options.get(54)),
    )


def _address(raw: bytes | None) -> str | None:
    return str(ipaddress.IPv4Address(raw)) if raw is not None and len(raw) == 4 else None


def _options(raw: bytes) -> dict[int, bytes]:
    options: dict[int, bytes] = {}
    i = 0
    while i < len(raw):
        code = raw[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= len(raw):
            break
        length = raw[i + 1]
        options[code] = raw[i + 2 : i + 2 + length]
        i += 2 + length
    return options


def _routes(lease: Lease) -> bytes:
    """Option 121: the edge's address on-link (router 0.0.0.0), and the default route (a
    client given option 121 ignores option 3, RFC 3442)."""
    on_link = bytes([32]) + ipaddress.IPv4Address(EDGE_ADDRESS).packed + bytes(4)
    if lease.router is None:
        return on_link
    return on_link + bytes([0]) + ipaddress.IPv4Address(lease.router).packed


def _encode(options: list[tuple[int, bytes]]) -> bytes:
    out = bytearray(_MAGIC)
    for code, value in options:
        for start in range(0, max(len(value), 1), 255):  # RFC 3396: long options split
            chunk = value[start : start + 255]
            out += bytes([code, len(chunk)]) + chunk
    return bytes(out + b"\xff")


@dataclass(frozen=True, slots=True)
class Answer:
    """The packet to send and where to (address, UDP port 68)."""

    packet: bytes
    to: str


def answer(message: Message, lease: Lease) -> Answer | None:
    """The edge's answer to `message` from the port whose lease is `lease` (its MAC's), or
    None: stay silent."""
    if message.giaddr != "0.0.0.0" or message.mac != lease.mac.lower():
        return None
    if message.kind == DISCOVER:
        kind = OFFER
    elif message.kind == REQUEST:
        if message.server_id is not None and message.server_id != EDGE_ADDRESS:
            return None  # the client chose another server
        wanted = message.requested or message.ciaddr
        kind = ACK if wanted == lease.ip else NAK
    else:
        return None  # DECLINE, RELEASE, INFORM: nothing to change for a fixed lease
    mask = ipaddress.IPv4Network(f"0.0.0.0/{lease.prefix_length}").netmask
    options: list[tuple[int, bytes]] = [(53, bytes([kind])), (54, _packed(EDGE_ADDRESS))]
    if kind != NAK:
        options += [
            (51, struct.pack("!I", LEASE_SECONDS)),
            (1, mask.packed),
            (26, struct.pack("!H", lease.mtu)),
            (121, _routes(lease)),
        ]
        if lease.router is not None:
            options.append((3, _packed(lease.router)))
        if lease.dns_servers:
            options.append((6, b"".join(_packed(a) for a in lease.dns_servers)))
        if lease.hostname:
            options.append((12, lease.hostname.encode()))
    header = _HEADER.pack(
        2, 1, 6, 0, message.xid, 0, message.flags,
        _packed(message.ciaddr), _packed(lease.ip if kind != NAK else "0.0.0.0"),
        bytes(4), bytes(4), bytes.fromhex(lease.mac.replace(":", "")) + bytes(10),
        bytes(64), bytes(128),
    )  # fmt: skip
    if kind == NAK or (message.ciaddr == "0.0.0.0" and message.flags & _BROADCAST_FLAG):
        to = "255.255.255.255"
    elif message.ciaddr != "0.0.0.0":
        to = message.ciaddr  # a renewal: the client has its address
    else:
        to = lease.ip  # the edge knows the port's MAC (a permanent neighbour entry)
    return Answer(header + _encode(options), to)


def _packed(address: str) -> bytes:
    return ipaddress.IPv4Address(address).packed
