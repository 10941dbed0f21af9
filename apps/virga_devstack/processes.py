"""Virga services as OS processes: start one detached, wait for /healthz, stop it by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class ServiceProcessError(RuntimeError):
    """A service did not start, or did not become healthy; the message holds its log tail."""


@dataclass
class ServiceProcess:
    """One Virga service process (`python -m <module>`), its environment and its files."""

    name: str
    """Unique within a stack: `gateway`, `scheduler`, `compute-host-1`..."""
    module: str
    """The module run with `python -m`."""
    env: dict[str, str]
    """Variables added to the caller's environment."""
    run_dir: Path
    """Where `<name>.log` and `<name>.pid` live."""
    health_url: str | None = None
    """`http://127.0.0.1:<port>/healthz`: 200 once the service has caught up with the log."""
    python: str = sys.executable
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_ours(pid, self.module) else None

    def start(self) -> int:
        """Start the process detached (own session); a no-op if it already runs."""
        running = self.pid()
        if running is not None:
            return running
        if self._proc is not None:
            self._proc.poll()  # reap the last one, which ended on its own, before forgetting it
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.python, "-m", self.module],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        return self._proc.pid

    def wait_healthy(self, timeout: float = 60.0) -> None:
        if self.health_url is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid() is None and not self._alive():
                raise ServiceProcessError(f"{self.name} exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise ServiceProcessError(
            f"{self.name} not healthy after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL: a crash, as far as the service can tell."""
        self._signal(signal.SIGKILL, wait=10.0)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the service finishes its batch, snapshots, exits), SIGKILL if it hangs."""
        if not self._signal(signal.SIGTERM, wait=timeout):
            self._signal(signal.SIGKILL, wait=10.0)

    def _signal(self, sig: signal.Signals, wait: float) -> bool:
        """Send `sig` and wait up to `wait` s for the process to be gone; True if it is."""
        pid = self.pid()
        if pid is None:
            self._reap(0)
            return True
        os.kill(pid, sig)
        if self._proc is not None and self._proc.pid == pid:
            # Our own child: wait on it, so it is reaped and no zombie keeps its pid.
            if not self._reap(wait):
                return False
        else:
            deadline = time.monotonic() + wait
            while _is_ours(pid, self.module):
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
        self.pid_path.unlink(missing_ok=True)
        return True

    def _alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _reap(self, wait: float) -> bool:
        """True once our child (if any) has exited and been reaped."""
        if self._proc is None:
            return True
        try:
            self._proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            return False
        self._proc = None
        return True

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def _is_ours(pid: int, module: str) -> bool:
    """Only a live, non-zombie process running `-m module` counts: pids get reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if "\nState:\tZ" in status:
        return False
    return b"-m" in cmdline and module.encode() in cmdline
