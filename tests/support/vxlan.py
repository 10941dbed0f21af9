"""VXLAN packets made by hand, as anyone on the underlay could send them.

Run as `python vxlan.py send SRC DST VNI HEX...` (SRC `-` for any source address): each hex
Ethernet frame goes in one VXLAN packet (8-byte header with the I flag and `VNI`) over a plain
UDP socket to `DST`:4789 (IPv4 or IPv6, as `DST` is written). Tests start it with `ip netns exec`.
"""

from __future__ import annotations

import socket
import struct
import sys

VXLAN_PORT = 4789


def packet(vni: int, frame: bytes) -> bytes:
    """The UDP payload: flags (I: a valid VNI), 24 reserved bits, the VNI, 8 reserved bits."""
    return struct.pack("!II", 0x08 << 24, vni << 8) + frame


def send(source: str | None, destination: str, vni: int, frames: list[bytes]) -> None:
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        if source is not None:
            sock.bind((source, 0))
        for frame in frames:
            sock.sendto(packet(vni, frame), (destination, VXLAN_PORT))


if __name__ == "__main__":
    command, source, destination, vni, *frames = sys.argv[1:]
    assert command == "send", command
    send(
        None if source == "-" else source,
        destination,
        int(vni),
        [bytes.fromhex(f) for f in frames],
    )
