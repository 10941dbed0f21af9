"""Network namespaces, veths and guests for network tests: made by name, always removed."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def sh(
    *args: str, netns: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a command (in `netns` if given); raise with its output when it fails and `check`."""
    command = [*(["ip", "netns", "exec", netns] if netns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stdout}{result.stderr}")
    return result


def unique(prefix: str) -> str:
    """A fresh name starting with `prefix` (short enough for interfaces and namespaces)."""
    return f"{prefix}{uuid.uuid4().hex[: 14 - len(prefix)]}"


@contextmanager
def namespaces(names: Sequence[str]) -> Iterator[list[str]]:
    """Create the namespaces (loopback up); delete them on exit, even after a failure."""
    made: list[str] = []
    try:
        for name in names:
            sh("ip", "netns", "add", name)
            made.append(name)
            sh("ip", "link", "set", "lo", "up", netns=name)
        yield made
    finally:
        for name in made:
            sh("ip", "netns", "del", name, check=False)


def links(netns: str) -> set[str]:
    """Interface names in `netns`."""
    out = sh("ip", "-o", "link", "show", netns=netns).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if line}


def plug_guest(host_ns: str, peer: str, guest_ns: str, mac: str, ips: Sequence[str]) -> None:
    """Move a port's veth peer from `host_ns` into `guest_ns` as eth0 with `mac` and `ips`."""
    sh("ip", "link", "set", peer, "netns", guest_ns, netns=host_ns)
    sh("ip", "link", "set", peer, "name", "eth0", netns=guest_ns)
    sh("ip", "link", "set", "eth0", "address", mac, netns=guest_ns)
    for ip in ips:
        # IPv6 without duplicate address detection: usable at once, as a test needs it.
        extra = ["nodad"] if ":" in ip else []
        plen = "64" if ":" in ip else "24"
        sh("ip", "addr", "add", f"{ip}/{plen}", "dev", "eth0", *extra, netns=guest_ns)
    sh("ip", "link", "set", "eth0", "up", netns=guest_ns)


def pings(guest_ns: str, ip: str, count: int = 1, wait: float = 1.0) -> bool:
    """Whether `ip` answers a ping from `guest_ns`."""
    result = sh(
        "ping", "-c", str(count), "-W", str(wait), "-i", "0.2", ip, netns=guest_ns, check=False
    )
    return result.returncode == 0
