"""Facts about local processes, ports and directories that the devstack commands share."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Serialise concurrent `make up`/test sessions that touch the same directory."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def process_exists(pid: int) -> bool:
    """Whether `pid` is a live process; a zombie, exited but not yet reaped, is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        return False
    # A zombie main thread with other threads still running (a JVM shutting down) is alive.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X") or threads > 1


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1.0):
        return True
    return False


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def default_cache_root() -> Path:
    """``$VIRGA_CACHE_DIR``, else ``$XDG_CACHE_HOME/virga``, else ``~/.cache/virga``."""
    if explicit := os.environ.get("VIRGA_CACHE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "virga"


def default_state_root() -> Path:
    """``$VIRGA_STATE_DIR``, else ``$XDG_STATE_HOME/virga``, else ``~/.local/state/virga``."""
    if explicit := os.environ.get("VIRGA_STATE_DIR"):
        return Path(explicit)
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "virga"
