"""Loopback ports for the processes a test starts.

A port the kernel hands out for `bind(("127.0.0.1", 0))` comes from the ephemeral range, the
same range every outgoing connection takes its local port from. Between the probe and the
service's own bind (seconds later, in another process) a client socket of any test (a Kafka
connection, say) can take it, and the service fails with "address already in use". Ports
below the ephemeral range are never given to client sockets; each is handed out once per
test session, and only after a probe found it free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOW = 23000
"""Above the fixed ports of the test broker (19192) and Ceph (16789) and devstack's blocks."""

_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A loopback TCP port that no socket holds now and no client socket will be given."""
    high = min(_ephemeral_low(), 32768)
    if high <= LOW:  # an unusual ephemeral range: take the kernel's choice after all
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
            return port
    candidates = [port for port in range(LOW, high) if port not in _handed_out]
    random.shuffle(candidates)  # parallel sessions (pytest, a benchmark) rarely meet
    for port in candidates:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {LOW}..{high}")
