"""A one-monitor, one-OSD Ceph cluster on 127.0.0.1 for development and tests (memstore).

Debian's Ceph 16 packages provide the daemons; this module only configures and runs them.
Each cluster is identified by its monitor port and keeps its ceph.conf, keyrings, logs and
pid files in ``<state root>/ceph-<port>``; nothing in /etc/ceph is read or written. The OSD
keeps objects in memory (``osd objectstore = memstore``), so every start makes a new, empty
cluster and a stop loses its data: it is a scratch cluster, not a store.

The functions and methods here block; from async code, call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from virga_devstack.localproc import default_state_root, exclusive, port_open, process_exists, tail

DEFAULT_PORT: Final = 6789
START_TIMEOUT: Final = 90.0
STOP_TIMEOUT: Final = 20.0
POOL: Final = "rbd"
PACKAGES: Final = ("ceph-mon", "ceph-osd", "ceph-common", "python3-rados", "python3-rbd")
TOOLS: Final = ("ceph-mon", "ceph-osd", "ceph", "ceph-authtool", "monmaptool", "rados")
# A memstore OSD holds every object in RAM; this caps it (thin images take no space).
MEMSTORE_BYTES: Final = 2 << 30


class CephError(RuntimeError):
    """The cluster could not be started or stopped, or Ceph is not installed; says why."""


def missing_packages_message(what: Sequence[str]) -> str:
    return (
        f"{', '.join(what)} not found: install Ceph with "
        f"`apt-get install {' '.join(PACKAGES)}` (CI and `make up` do this)"
    )


def require_tools() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise CephError(missing_packages_message(missing))


class CephCluster:
    """A local cluster found again by its monitor port across processes."""

    def __init__(self, port: int = DEFAULT_PORT, *, state_root: Path | None = None) -> None:
        self.host: Final = "127.0.0.1"
        self.port: Final = port
        self.pool: Final = POOL
        self.directory: Final = (state_root or default_state_root()) / f"ceph-{port}"
        # Children spawned by this object, so that it can reap them after stopping them.
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        return f"CephCluster({self.monitor}, directory={str(self.directory)!r})"

    @property
    def monitor(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def conf_file(self) -> Path:
        return self.directory / "ceph.conf"

    @property
    def keyring(self) -> Path:
        """The client.admin keyring (also named in ceph.conf)."""
        return self.directory / "keyring"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "log"

    def _pid_file(self, daemon: str) -> Path:
        return self.directory / f"{daemon}.pid"

    def pid(self, daemon: str) -> int | None:
        """The live pid of ``mon`` or ``osd`` of this cluster, or None.

        The pid file alone is not trusted: pids are reused, so the process must also be that
        Ceph daemon started with this directory's ceph.conf.
        """
        try:
            pid = int(self._pid_file(daemon).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]
            return None
        if not process_exists(pid):
            return None
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            return None
        if Path(arguments[0].decode()).name == f"ceph-{daemon}" and (
            str(self.conf_file).encode() in arguments
        ):
            return pid
        return None

    def is_running(self) -> bool:
        """Whether both daemons live and the rbd pool accepts a write and a read."""
        return (
            self.pid("mon") is not None
            and self.pid("osd") is not None
            and self._pool_answers(timeout=10.0)
        )

    def start(self, *, timeout: float = START_TIMEOUT) -> bool:
        """Make a new cluster and wait until its rbd pool takes I/O; False if already running.

        If a daemon exits or the pool does not answer within `timeout` seconds, what was
        started is stopped again and CephError carries the end of the logs.
        """
        require_tools()
        with exclusive(self.directory / ".lock"):
            if self.pid("mon") is not None and self.pid("osd") is not None:
                if self._wait_for_pool(timeout):
                    return False
                raise CephError(f"the cluster of {self.directory} runs but its pool is silent")
            self._stop_daemons()
            if port_open(self.host, self.port):
                raise CephError(
                    f"port {self.port} is already in use by a process that is not the monitor "
                    f"of {self.directory}"
                )
            try:
                self._create(timeout)
            except BaseException:
                self._stop_daemons()
                raise
            return True

    def stop(self) -> bool:
        """Stop the OSD, then the monitor, by pid; False if neither was running."""
        with exclusive(self.directory / ".lock"):
            return self._stop_daemons()

    def pause_osd(self, paused: bool = True) -> None:
        """Stop the OSD in its tracks (SIGSTOP), or let it go on (SIGCONT): for fault tests.
        A stopped OSD answers nothing, as one that hangs or is cut off; it keeps its objects
        (a memstore OSD that exits loses them, so it cannot be stopped and started again).

        A resumed OSD is marked down, and this waits until it is up again: its placement groups
        may come back "laggy" (their read lease ran out while it was stopped) and park every op
        until the next interval change, which nothing else brings about with one OSD
        (ceph/ceph-container#1682; seen in CI as creates timing out for minutes)."""
        pid = self.pid("osd")
        if pid is None:
            raise CephError(f"the OSD of {self.directory} is not running")
        os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)
        if not paused:
            deadline = time.monotonic() + 120
            booted = self._osd_up_from(deadline) or 0
            self._ceph("osd", "down", "0", deadline=deadline)
            while (up_from := self._osd_up_from(deadline)) is None or up_from <= booted:
                time.sleep(0.2)

    def _osd_up_from(self, deadline: float) -> int | None:
        """The map epoch the OSD last came up in; None while it is down."""
        [osd] = json.loads(self._ceph("osd", "dump", "--format", "json", deadline=deadline))["osds"]
        return int(osd["up_from"]) if osd["up"] else None

    # -- creation, following the recipe verified on Debian 12 --------------------------------

    def _create(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for sub in ("mon", "osd", "run"):
            shutil.rmtree(self.directory / sub, ignore_errors=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("mon", "osd/ceph-0", "run"):
            (self.directory / sub).mkdir(parents=True, exist_ok=True)
        fsid = str(uuid.uuid4())
        self.conf_file.write_text(self._conf(fsid))
        mon_keyring = self.directory / "mon.keyring"
        monmap = self.directory / "monmap"
        for path in (mon_keyring, self.keyring, monmap):
            path.unlink(missing_ok=True)
        self._run(
            "ceph-authtool", "--create-keyring", mon_keyring, "--gen-key", "-n", "mon.",
            "--cap", "mon", "allow *",
        )  # fmt: skip
        self._run(
            "ceph-authtool", "--create-keyring", self.keyring, "--gen-key", "-n", "client.admin",
            "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *",
        )  # fmt: skip
        self._run("ceph-authtool", mon_keyring, "--import-keyring", self.keyring)
        self._run(
            "monmaptool", "--create", "--addv", "a", f"[v1:{self.monitor}]", "--fsid", fsid, monmap
        )  # fmt: skip
        self._run(
            "ceph-mon", "-c", self.conf_file, "--mkfs", "-i", "a",
            "--monmap", monmap, "--keyring", mon_keyring,
        )  # fmt: skip
        self._spawn("mon", "ceph-mon", "-i", "a")
        osd_id = self._ceph("osd", "create", deadline=deadline).strip()
        if osd_id != "0":
            raise CephError(f"`ceph osd create` gave id {osd_id!r}, expected 0")
        self._run("ceph-osd", "-c", self.conf_file, "-i", "0", "--mkfs", "--mkkey",
                  "--no-mon-config")  # fmt: skip
        osd_keyring = self.directory / "osd" / "ceph-0" / "keyring"
        self._ceph(
            "auth", "add", "osd.0", "osd", "allow *", "mon", "allow profile osd",
            "-i", str(osd_keyring), deadline=deadline,
        )  # fmt: skip
        self._ceph("osd", "crush", "add-bucket", "localhost", "host", deadline=deadline)
        self._ceph("osd", "crush", "move", "localhost", "root=default", deadline=deadline)
        self._ceph("osd", "crush", "add", "osd.0", "1.0", "host=localhost", deadline=deadline)
        self._spawn("osd", "ceph-osd", "-i", "0")
        self._ceph("osd", "pool", "create", self.pool, "8", deadline=deadline)
        self._ceph("osd", "pool", "application", "enable", self.pool, "rbd", deadline=deadline)
        # Clone v2 (clones without protected snapshots, trash-aware children) needs mimic.
        self._ceph("osd", "set-require-min-compat-client", "mimic", deadline=deadline)
        if not self._wait_for_pool(max(deadline - time.monotonic(), 1.0)):
            raise CephError(
                f"the {self.pool} pool did not accept I/O within {timeout:.0f} s; "
                f"end of the logs in {self.logs_dir}:\n{self._log_tail()}"
            )

    def _conf(self, fsid: str) -> str:
        d = self.directory
        return f"""\
[global]
fsid = {fsid}
mon host = [v1:{self.monitor}]
mon initial members = a
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = {self.keyring}
run dir = {d / "run"}
admin socket = {d / "run"}/$name.asok
log file = {self.logs_dir}/$name.log
# msgr v1 only, on the configured port: v2's fixed port 3300 would clash between clusters.
ms bind msgr2 = false
ms bind ipv6 = false
public addr = {self.host}
osd pool default size = 1
osd pool default min size = 1
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail warn = 1
mon data avail crit = 0
osd objectstore = memstore
memstore device bytes = {MEMSTORE_BYTES}
# Without these a client of a stopped cluster blocks forever.
client mount timeout = 15
rados osd op timeout = 30
rados mon op timeout = 30

[mon]
mon data = {d / "mon"}/$cluster-$id

[osd]
osd data = {d / "osd"}/$cluster-$id
keyring = {d / "osd"}/$cluster-$id/keyring
"""

    def _run(self, *command: str | Path, timeout: float = 60.0) -> str:
        arguments = [str(part) for part in command]
        try:
            result = subprocess.run(
                arguments, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as error:
            raise CephError(f"`{' '.join(arguments)}` did not finish in {timeout:.0f} s") from error
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise CephError(f"`{' '.join(arguments)}` failed (exit {result.returncode}):\n"
                            f"{tail(output)}")  # fmt: skip
        return result.stdout

    def _ceph(self, *command: str, deadline: float) -> str:
        """A ``ceph`` CLI command against this cluster, bounded by the start's deadline."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CephError(f"timed out before `ceph {' '.join(command)}`")
        return self._run(
            "ceph", "-c", self.conf_file, "--connect-timeout", str(max(int(remaining), 1)),
            *command, timeout=remaining + 5,
        )  # fmt: skip

    def _spawn(self, daemon: str, *command: str) -> None:
        # -f: stay in the foreground, so the pid we record is the daemon's own.
        with (self.logs_dir / f"{daemon}.out").open("ab") as output:
            process = subprocess.Popen(
                [shutil.which(command[0]) or command[0], *command[1:], "-f",
                 "-c", str(self.conf_file)],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # outlives this process; ignores the terminal's ^C
            )  # fmt: skip
        self._children[process.pid] = process
        self._pid_file(daemon).write_text(f"{process.pid}\n")

    def _pool_answers(self, timeout: float) -> bool:
        """Write an object to the pool with the rados CLI and read it back."""
        marker = f"virga-ready-{uuid.uuid4().hex}"
        base = [
            "rados", "-c", str(self.conf_file), "-p", self.pool,
            "--client-mount-timeout", str(int(timeout)),
            "--rados-osd-op-timeout", str(int(timeout)),
        ]  # fmt: skip
        try:
            written = subprocess.run(
                [*base, "put", marker, "-"],
                input=marker.encode(),
                capture_output=True,
                timeout=timeout + 5,
                check=False,
            )
            if written.returncode != 0:
                return False
            read = subprocess.run(
                [*base, "get", marker, "-"], capture_output=True, timeout=timeout + 5, check=False
            )
            subprocess.run([*base, "rm", marker], capture_output=True, timeout=timeout + 5,
                           check=False)  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return read.returncode == 0 and read.stdout == marker.encode()

    def _wait_for_pool(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            for daemon in ("mon", "osd"):
                if self.pid(daemon) is None:
                    raise CephError(
                        f"ceph-{daemon} exited while starting; end of the logs in "
                        f"{self.logs_dir}:\n{self._log_tail()}"
                    )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._pool_answers(timeout=min(5.0, max(remaining, 1.0))):
                return True
            time.sleep(0.2)

    def _stop_daemons(self) -> bool:
        stopped = False
        for daemon in ("osd", "mon"):
            pid = self.pid(daemon)
            if pid is not None:
                self._terminate(pid)
                stopped = True
            self._pid_file(daemon).unlink(missing_ok=True)
        return stopped

    def _terminate(self, pid: int) -> None:
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if self._wait_exit(pid, wait):
                return
        raise CephError(f"a Ceph daemon (pid {pid}) survived SIGKILL")

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        child = self._children.get(pid)
        if child is not None:
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                return False
            del self._children[pid]
            return True
        deadline = time.monotonic() + timeout
        while process_exists(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _log_tail(self) -> str:
        parts = []
        for name in ("mon.out", "osd.out", "mon.a.log", "osd.0.log"):
            with contextlib.suppress(FileNotFoundError):
                text = (self.logs_dir / name).read_text(errors="replace").strip()
                if text:
                    parts.append(f"--- {name}\n{tail(text, 15)}")
        return "\n".join(parts) or "(no log output)"
