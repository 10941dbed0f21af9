"""Hand-made Ethernet frames, and a script to send or capture them inside a namespace.

Run as `python frames.py send IFACE HEX...` or `python frames.py sniff IFACE SECONDS [UNTIL]`
(one hex frame per output line); tests start it with `ip netns exec`. Checksums are right:
br_netfilter drops IPv4 headers with a bad one, and conntrack calls such packets invalid.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
BROADCAST = "ff:ff:ff:ff:ff:ff"


def _mac(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def ether(dst: str, src: str, ethertype: int, payload: bytes) -> bytes:
    return _mac(dst) + _mac(src) + struct.pack("!H", ethertype) + payload


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def ipv4_icmp(src_mac: str, dst_mac: str, src: str, dst: str, marker: bytes) -> bytes:
    """An ICMP echo request carrying `marker`."""
    icmp = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + marker
    icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
    addresses = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(icmp), 0, 0, 64, 1, 0) + addresses
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return ether(dst_mac, src_mac, 0x0800, header + icmp)


def ipv4_udp(
    src_mac: str, dst_mac: str, src: str, dst: str, sport: int, dport: int, payload: bytes
) -> bytes:
    """A UDP datagram (no UDP checksum, which IPv4 allows)."""
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    addresses = ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0) + addresses
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return ether(dst_mac, src_mac, 0x0800, header + udp)


def arp_reply(src_mac: str, sender_mac: str, sender_ip: str, target_ip: str) -> bytes:
    """A gratuitous-style ARP reply: `sender_ip` is at `sender_mac`, broadcast."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + _mac(sender_mac)
    body += ipaddress.IPv4Address(sender_ip).packed + _mac(BROADCAST)
    body += ipaddress.IPv4Address(target_ip).packed
    return ether(BROADCAST, src_mac, 0x0806, body)


def arp_probe(src_mac: str, target_ip: str) -> bytes:
    """An ARP probe (RFC 5227): who has `target_ip`, asked from 0.0.0.0, broadcast."""
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + _mac(src_mac)
    body += ipaddress.IPv4Address("0.0.0.0").packed + bytes(6)
    body += ipaddress.IPv4Address(target_ip).packed
    return ether(BROADCAST, src_mac, 0x0806, body)


def vlan_tagged(frame: bytes, vid: int, tpid: int = 0x8100) -> bytes:
    """`frame` with a VLAN tag (`vid`; 802.1Q, or 802.1ad with tpid 0x88A8) inserted after
    its MAC addresses."""
    return frame[:12] + struct.pack("!HH", tpid, vid & 0x0FFF) + frame[12:]


def other_ethertype(src_mac: str, dst_mac: str, ethertype: int, marker: bytes) -> bytes:
    """A frame of an ethertype that is none of ARP, IPv4, IPv6 (e.g. 0x88B5, local
    experimental), padded to the 60-byte minimum."""
    return ether(dst_mac, src_mac, ethertype, marker.ljust(46, b"\0"))


def _ipv6(src_mac: str, dst_mac: str, src: str, dst: str, icmp: bytes) -> bytes:
    addresses = ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
    pseudo = addresses + struct.pack("!IxxxB", len(icmp), 58)
    icmp = icmp[:2] + struct.pack("!H", checksum(pseudo + icmp)) + icmp[4:]
    header = struct.pack("!IHBB", 0x60000000, len(icmp), 58, 255) + addresses
    return ether(dst_mac, src_mac, 0x86DD, header + icmp)


def ipv6_echo(src_mac: str, dst_mac: str, src: str, dst: str, marker: bytes) -> bytes:
    """An ICMPv6 echo request carrying `marker`."""
    return _ipv6(src_mac, dst_mac, src, dst, struct.pack("!BBHHH", 128, 0, 0, 1, 1) + marker)


def neighbour_advert(src_mac: str, src: str, target: str) -> bytes:
    """An unsolicited neighbour advertisement: `target` is at `src_mac`, to all nodes."""
    icmp = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ipaddress.IPv6Address(target).packed
    icmp += struct.pack("!BB", 2, 1) + _mac(src_mac)
    return _ipv6(src_mac, "33:33:00:00:00:01", src, "ff02::1", icmp)


def neighbour_solicit_dad(src_mac: str, target: str) -> bytes:
    """Duplicate address detection: a neighbour solicitation for `target` from `::` to
    its solicited-node multicast group (no source link-layer option, as RFC 4861 wants)."""
    packed = ipaddress.IPv6Address(target).packed
    group = ipaddress.IPv6Address(bytes.fromhex("ff0200000000000000000001ff") + packed[13:])
    icmp = struct.pack("!BBHI", 135, 0, 0, 0) + packed
    dst_mac = "33:33:" + ":".join(f"{b:02x}" for b in group.packed[12:])
    return _ipv6(src_mac, dst_mac, "::", str(group), icmp)


def redirect(src_mac: str, dst_mac: str, src: str, dst: str, target: str, to: str) -> bytes:
    """An ICMPv6 redirect: traffic for `to` should go to `target` (RFC 4861 4.5)."""
    icmp = struct.pack("!BBHI", 137, 0, 0, 0)
    icmp += ipaddress.IPv6Address(target).packed + ipaddress.IPv6Address(to).packed
    return _ipv6(src_mac, dst_mac, src, dst, icmp)


def router_advert(src_mac: str, src: str) -> bytes:
    icmp = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    return _ipv6(src_mac, "33:33:00:00:00:01", src, "ff02::1", icmp)


def _send(iface: str, frames: list[bytes]) -> None:
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((iface, 0))
        for frame in frames:
            sock.send(frame)


def _sniff(iface: str, seconds: float, until: bytes | None) -> None:
    """Print every frame for `seconds`, or until one containing `until` arrives (a sender's
    last frame: frames on one path keep their order, so nothing it sent is still coming)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((iface, 0))
        sock.settimeout(0.1)
        print("listening", flush=True)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                frame = sock.recv(65535)
            except TimeoutError:
                continue
            print(frame.hex(), flush=True)
            if until is not None and until in frame:
                return


if __name__ == "__main__":
    command, iface, *rest = sys.argv[1:]
    if command == "send":
        _send(iface, [bytes.fromhex(frame) for frame in rest])
    else:
        _sniff(iface, float(rest[0]), rest[1].encode() if len(rest) > 1 else None)
