"""Port MACs: derived from the port id, so a re-decided allocation picks the same one."""

from __future__ import annotations

import hashlib
from collections.abc import Container

MAX_ATTEMPTS = 64
"""Derivations tried before giving up; each collides with probability (ports in use) / 2**24."""


def candidate_mac(prefix: str, port_id: str, attempt: int) -> str:
    """The `attempt`-th candidate MAC of a port: `prefix` and three octets of a hash."""
    digest = hashlib.sha256(f"{port_id}/{attempt}".encode()).digest()
    return prefix + "".join(f":{octet:02x}" for octet in digest[:3])


def pick_mac(prefix: str, port_id: str, in_use: Container[str]) -> str | None:
    """The first candidate not in use, or None if MAX_ATTEMPTS candidates all are."""
    for attempt in range(MAX_ATTEMPTS):
        mac = candidate_mac(prefix, port_id, attempt)
        if mac not in in_use:
            return mac
    return None
