"""A libvirtd of a test's own, which the test may stop and start again while guests run.

The system libvirtd (/run/libvirt/libvirt-sock) is shared with every other test running on
the machine: a test never restarts it. This one (recipe of /work/shared/DESIGN.md, "live
migration between two libvirtd daemons") runs in a mount and network namespace of its own,
held by a `sleep` process, with private directories bind-mounted over /etc/libvirt,
/run/libvirt, /var/lib/libvirt, /var/cache/libvirt and /var/log/libvirt, and its own virtlogd;
never the system daemons' pid files. Clients reach it through its socket:
`qemu+unix:///system?socket=<dir>/run/libvirt-sock`. QEMU processes it starts outlive a
restart of the daemon, as under a system libvirtd. Everything is stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

_MOUNTS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}


def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie child counts as gone.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


class PrivateLibvirtd:
    def __init__(self) -> None:
        # Short: a unix socket path must fit in 108 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="vgl-", dir="/tmp"))
        self.run_dir = self.base / "run"
        self.uri = f"qemu+unix:///system?socket={self.run_dir}/libvirt-sock"
        self._holder: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Make the namespace and start virtlogd and libvirtd in it."""
        for name in _MOUNTS:
            if name != "etc":
                (self.base / name).mkdir()
        shutil.copytree("/etc/libvirt", self.base / "etc", symlinks=True)
        with (self.base / "etc" / "qemu.conf").open("a") as conf:
            # Two daemons would collide in the same cgroup names; no confinement for tests.
            conf.write('\nsecurity_driver = "none"\ncgroup_controllers = [ ]\n')
        mounts = " && ".join(
            f"mount --bind {self.base / name} {target}" for name, target in _MOUNTS.items()
        )
        ready = self.base / "ready"
        script = f"{mounts} && touch {ready} && exec sleep infinity"
        self._holder = subprocess.Popen(
            ["unshare", "-m", "-n", "--propagation", "private", "sh", "-c", script]
        )
        _wait(ready.exists, 10, "the namespace of the private libvirtd")
        self._enter("virtlogd", "-d", "-p", "/run/libvirt/virtlogd.pid")
        self.start_libvirtd()

    def _enter(self, *command: str) -> None:
        assert self._holder is not None
        pid = str(self._holder.pid)
        subprocess.run(["nsenter", "-t", pid, "-m", "-n", *command], check=True)

    def _pid(self, daemon: str) -> int | None:
        path = self.run_dir / f"{daemon}.pid"
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        return None

    def start_libvirtd(self) -> None:
        self._enter("libvirtd", "-d", "-p", "/run/libvirt/libvirtd.pid")
        socket = self.run_dir / "libvirt-sock"
        _wait(lambda: socket.exists() and self._answers(), 30, "the private libvirtd")

    def _answers(self) -> bool:
        command = ["virsh", "-c", self.uri, "version"]
        return subprocess.run(command, capture_output=True, check=False).returncode == 0

    def stop_libvirtd(self) -> None:
        """SIGTERM the daemon (its guests keep running) and wait until it is gone."""
        self._kill("libvirtd")

    def _kill(self, daemon: str) -> None:
        pid = self._pid(daemon)
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        _wait(lambda: not _alive(pid), 30, f"{daemon} to exit")

    def qemu_pid(self, domain: str) -> int | None:
        """The pid of the domain's QEMU, if its pid file names a live QEMU of that domain."""
        with contextlib.suppress(OSError, ValueError):
            pid = int((self.run_dir / "qemu" / f"{domain}.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if f"guest={domain},".encode() in cmdline or f"guest={domain} ".encode() in cmdline:
                return pid
        return None

    def stop(self) -> None:
        """Destroy its guests, stop its daemons and the namespace's holder."""
        if self._pid("libvirtd") is not None and self._answers():
            listed = subprocess.run(
                ["virsh", "-c", self.uri, "list", "--all", "--name"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.split()
            for name in listed:
                subprocess.run(["virsh", "-c", self.uri, "destroy", name], check=False)
                subprocess.run(["virsh", "-c", self.uri, "undefine", name], check=False)
        qemu_dir = self.run_dir / "qemu"
        for name in os.listdir(qemu_dir) if qemu_dir.exists() else ():
            # A guest left while the daemon was away: killed only if the pid is its QEMU.
            pid = self.qemu_pid(name.removesuffix(".pid")) if name.endswith(".pid") else None
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._kill("libvirtd")
        self._kill("virtlogd")
        if self._holder is not None:
            self._holder.terminate()
            self._holder.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def private_libvirtd() -> Iterator[PrivateLibvirtd]:
    daemon = PrivateLibvirtd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()
