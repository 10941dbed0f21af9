"""The local libvirt daemon for real guests: configure it, start virtlogd + libvirtd, stop by pid.

Debian's packages (libvirt-daemon, libvirt-daemon-driver-qemu, qemu-system-x86) expect
systemd to start the daemons; on machines without it (containers, CI) this module does it.
Guests run as root and use TCG (`<domain type='qemu'>`): nested KVM is not available here.
"""

from __future__ import annotations

import argparse
import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SOCKET = Path("/run/libvirt/libvirt-sock")
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
STATE = Path(os.environ.get("VIRGA_STATE_DIR", Path.home() / ".local/state/virga")) / "libvirt"
DAEMONS = ("virtlogd", "libvirtd")
_CHILDREN: dict[str, subprocess.Popen[bytes]] = {}
"""Daemons this process started, kept so that stop() can reap them."""


class LibvirtError(RuntimeError):
    """libvirtd is missing or would not start; the message says what to do."""


def is_running() -> bool:
    return SOCKET.exists() and _answers()


def _answers() -> bool:
    virsh = shutil.which("virsh")
    if virsh is None:
        return SOCKET.exists()
    result = subprocess.run(
        [virsh, "-c", "qemu:///system", "version"], capture_output=True, timeout=20, check=False
    )
    return result.returncode == 0


def _configure() -> None:
    """Make the daemon start without systemd's set-up: its users, log dir and qemu.conf."""
    for group in ("kvm", "libvirt-qemu"):
        try:
            grp.getgrnam(group)
        except KeyError:
            subprocess.run(["groupadd", "-r", group], check=True)
    try:
        pwd.getpwnam("libvirt-qemu")
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "-r",
                "-g",
                "libvirt-qemu",
                "-s",
                "/usr/sbin/nologin",
                "-d",
                "/var/lib/libvirt",
                "libvirt-qemu",
            ],
            check=True,
        )
    for directory in ("/var/log/libvirt", "/run/libvirt", "/var/lib/libvirt/qemu"):
        Path(directory).mkdir(parents=True, exist_ok=True)
    if not QEMU_CONF.exists():
        # Guests run as root: no per-image ownership juggling on a dev or CI machine.
        QEMU_CONF.write_text('user = "root"\ngroup = "root"\n')


def start(timeout: float = 30.0) -> bool:
    """Start virtlogd and libvirtd unless libvirtd already answers; True if this started them."""
    if is_running():
        return False
    if os.geteuid() != 0:
        raise LibvirtError("starting libvirtd needs root (run `make up`/`make test` as root)")
    missing = [d for d in DAEMONS if shutil.which(d) is None]
    if missing:
        raise LibvirtError(
            f"{', '.join(missing)} not installed: apt-get install libvirt-daemon "
            "libvirt-daemon-driver-qemu qemu-system-x86 libvirt-clients"
        )
    _configure()
    STATE.mkdir(parents=True, exist_ok=True)
    for daemon in DAEMONS:
        with (STATE / f"{daemon}.log").open("ab") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                [shutil.which(daemon) or daemon],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        _CHILDREN[daemon] = proc
        (STATE / f"{daemon}.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_running():
            return True
        time.sleep(0.3)
    tail = (STATE / "libvirtd.log").read_text(errors="replace").splitlines()[-10:]
    raise LibvirtError("libvirtd did not answer:\n" + "\n".join(tail))


def stop() -> None:
    """Stop the daemons this module started (by the pids it recorded); others are left alone."""
    for daemon in reversed(DAEMONS):
        pid_file = STATE / f"{daemon}.pid"
        try:
            pid = int(pid_file.read_text())
        except (FileNotFoundError, ValueError):
            continue
        child = _CHILDREN.pop(daemon, None)
        if child is not None and child.pid == pid:
            # Started by this process: wait on it, so it is reaped rather than left a zombie.
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=10)
        elif _cmdline(pid).endswith(daemon):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _cmdline(pid).endswith(daemon):
                    break
                time.sleep(0.1)
        pid_file.unlink(missing_ok=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status"])
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started = start()
            print(
                "libvirt: started virtlogd and libvirtd"
                if started
                else "libvirt: libvirtd already answers"
            )
        elif args.command == "stop":
            stop()
            print("libvirt: stopped what this command started")
        else:
            running = is_running()
            print("libvirt: running" if running else "libvirt: not running")
            return 0 if running else 1
    except LibvirtError as error:
        print(f"libvirt: {error}", file=sys.stderr)
        return 1
    return 0
