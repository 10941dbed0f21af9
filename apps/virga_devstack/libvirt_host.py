"""More libvirt hosts on this machine, for live migration: each its own libvirtd in namespaces.

Recipe of /work/shared/DESIGN.md ("live migration between two libvirtd daemons on one
machine"). A host NAME is a `sleep` process holding new mount, network and UTS namespaces,
with private directories bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt,
/var/cache/libvirt and /var/log/libvirt, and in them its own virtlogd and libvirtd (pid files
in its private /run/libvirt, never the system daemons'). Its libvirtd.conf has a host_uuid of
its own (two daemons with one would refuse to migrate: "the same host") and listens for TCP
without auth on the host's address only, which exists inside its namespace only; its
qemu.conf has no security driver and no cgroup controllers (two daemons would collide in the
same cgroup names) and migrates on that address.

Network: the host's namespace has a bridge `br0` with its address (10.213.0.10 + n/24) and an
`eth0` in it, the end of a veth whose peer is in a hub namespace (another `sleep` holder with
a bridge `hub`), so every host reaches every other without a link in the root namespace.
Ceph: the test cluster listens on the root namespace's 127.0.0.1, which a namespace cannot
route to; a forwarder (`netns_forward`) listens on the host's 127.0.0.1 at the monitor's and
the OSDs' ports and connects to the root namespace's. Everything is stopped by pid, and only
processes whose command line is the one this module started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from virga_devstack.localproc import default_state_root, exclusive, process_exists

SUBNET = "10.213.0"
"""The hosts' /24: host n (from 0) has SUBNET.(10 + n)."""
_MOUNTS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}
_HOLDER = ["sleep", "infinity"]
_FORWARDER = "virga_devstack.netns_forward"
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""Processes this process started, by pid: kept so that stopping them reaps them."""


class HostError(RuntimeError):
    """A libvirt host would not start; the message says why."""


@dataclass(frozen=True)
class LibvirtHost:
    name: str
    directory: str
    address: str
    """The host's address, on its bridge, inside its namespace."""
    index: int

    @property
    def uri(self) -> str:
        """How a client on this machine (any namespace) reaches the host's libvirtd."""
        return f"qemu+unix:///system?socket={self.directory}/run/libvirt-sock"

    @property
    def peer_uri(self) -> str:
        """How another host's libvirtd reaches this one (peer-to-peer migration)."""
        return f"qemu+tcp://{self.address}/system"

    @property
    def migration_address(self) -> str:
        """Where QEMU of another host sends the guest's memory."""
        return f"tcp://{self.address}"

    def qemu_pid(self, domain: str) -> int | None:
        """The pid of the domain's QEMU on this host, if its pid file names a live one."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(Path(self.directory, "run", "qemu", f"{domain}.pid").read_text())
            if f"guest={domain}," in " ".join(_cmdline(pid)):
                return pid
        return None


def hosts_root() -> Path:
    return default_state_root() / "libvirt-hosts"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _pid(path: Path) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return None


def _ours(pid: int | None, argv0: str) -> bool:
    """Whether `pid` lives and runs `argv0`, or names it among its arguments (pids are
    reused: a pid file alone is no proof)."""
    if pid is None or not process_exists(pid):
        return False
    command = _cmdline(pid)
    return bool(command) and (Path(command[0]).name == argv0 or argv0 in command)


def _wait(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise HostError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _kill(pid: int | None, argv0: str, sig: int = signal.SIGTERM) -> None:
    if not _ours(pid, argv0):
        return
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + 20
    child = _CHILDREN.pop(pid, None)
    while _ours(pid, argv0):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if child is not None:
            child.poll()  # a child of this process: reap it
        time.sleep(0.05)
    if child is not None:
        child.wait(10)


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise HostError(f"{' '.join(command)}: {result.stderr.strip()}")


def _holder(directory: Path, flags: Sequence[str], script: str) -> int:
    """Start a `sleep` holding new namespaces after `script` ran in them; its pid."""
    ready = directory / "ready"
    ready.unlink(missing_ok=True)
    with (directory / "holder.log").open("ab") as log:
        proc = subprocess.Popen(
            [
                "unshare",
                *flags,
                "sh",
                "-c",
                f"{script} && touch {ready} && exec {' '.join(_HOLDER)}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # outlives the command that started it
        )
    _CHILDREN[proc.pid] = proc
    try:
        _wait(lambda: ready.exists() or proc.poll() is not None, 10, "a namespace holder")
        if proc.poll() is not None:
            raise HostError((directory / "holder.log").read_text(errors="replace")[-2000:])
        _wait(lambda: _ours(proc.pid, "sleep"), 10, "the holder to exec sleep")
    except HostError:
        _CHILDREN.pop(proc.pid)
        proc.kill()
        proc.wait(10)
        raise
    (directory / "holder.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def _hub(root: Path) -> int:
    """The hub namespace's holder, started if it is not running."""
    hub = root / "hub"
    pid = _pid(hub / "holder.pid")
    if _ours(pid, "sleep"):
        assert pid is not None
        return pid
    hub.mkdir(parents=True, exist_ok=True)
    script = "ip link set lo up && ip link add hub type bridge && ip link set hub up"
    return _holder(hub, ["-n"], script)


def _load(directory: Path) -> LibvirtHost | None:
    with contextlib.suppress(OSError, ValueError, TypeError):
        return LibvirtHost(**json.loads((directory / "host.json").read_text()))
    return None


def _answers(host: LibvirtHost) -> bool:
    command = ["virsh", "-c", host.uri, "version"]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


def _healthy(host: LibvirtHost) -> bool:
    directory = Path(host.directory)
    return (
        _ours(_pid(directory / "holder.pid"), "sleep")
        and _ours(_pid(directory / "run" / "libvirtd.pid"), "libvirtd")
        and _answers(host)
    )


def _free_index(root: Path) -> int:
    used = {host.index for d in root.iterdir() if (host := _load(d)) is not None}
    return min(set(range(len(used) + 1)) - used)


def _configure(directory: Path, address: str) -> None:
    for name in _MOUNTS:
        (directory / name).mkdir(parents=True, exist_ok=True)
    # The daemons' settings only: never the system daemon's domains, networks or secrets.
    for conf in Path("/etc/libvirt").glob("*.conf"):
        shutil.copy(conf, directory / "etc" / conf.name)
    with (directory / "etc" / "libvirtd.conf").open("a") as settings:
        settings.write(
            f'\nhost_uuid = "{uuid.uuid4()}"\nlisten_tcp = 1\nlisten_tls = 0\n'
            f'listen_addr = "{address}"\nauth_tcp = "none"\n'
        )
    with (directory / "etc" / "qemu.conf").open("a") as settings:
        settings.write(
            '\nsecurity_driver = "none"\ncgroup_controllers = [ ]\n'
            f'migration_address = "{address}"\nmigration_host = "{address}"\n'
        )


def start(name: str, *, ceph_ports: Sequence[int] = (), timeout: float = 60.0) -> LibvirtHost:
    """Start host `name` (or find it running) and return it. `ceph_ports` are forwarded."""
    if os.geteuid() != 0:
        raise HostError("a libvirt host needs root (namespaces, bind mounts)")
    root = hosts_root()
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / ".lock"):
        directory = root / name
        existing = _load(directory)
        if existing is not None and _healthy(existing):
            return existing
        _stop(root, name)
        index = _free_index(root)
        directory.mkdir(parents=True)
        host = LibvirtHost(name, str(directory), f"{SUBNET}.{10 + index}", index)
        try:
            _start(root, host, ceph_ports, timeout)
        except BaseException:
            _stop(root, name)
            raise
        (directory / "host.json").write_text(json.dumps(asdict(host)))
        return host


def _start(root: Path, host: LibvirtHost, ceph_ports: Sequence[int], timeout: float) -> None:
    directory = Path(host.directory)
    _configure(directory, host.address)
    hub = _hub(root)
    mounts = " && ".join(f"mount --bind {directory / d} {target}" for d, target in _MOUNTS.items())
    pid = _holder(directory, ["-m", "-n", "-u", "--propagation", "private"], mounts)
    enter = ["nsenter", "-t", str(pid), "-m", "-n", "-u"]
    _run(*enter, "hostname", host.name)
    peer = f"vh{host.index}"
    _run("ip", "link", "add", "eth0", "netns", str(pid), "type", "veth",
         "peer", "name", peer, "netns", str(hub))  # fmt: skip
    _run("nsenter", "-t", str(hub), "-n", "sh", "-c",
         f"ip link set {peer} master hub && ip link set {peer} up")  # fmt: skip
    bridge = (
        "ip link set lo up && ip link add br0 type bridge && ip link set eth0 master br0 && "
        f"ip addr add {host.address}/24 dev br0 && ip link set eth0 up && ip link set br0 up"
    )
    _run(*enter, "sh", "-c", bridge)
    if ceph_ports:
        with (directory / "forward.log").open("ab") as log:
            forward = subprocess.Popen(
                [sys.executable, "-m", _FORWARDER, str(pid),
                 *map(str, ceph_ports)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )  # fmt: skip
        _CHILDREN[forward.pid] = forward
        (directory / "forward.pid").write_text(f"{forward.pid}\n")
    _run(*enter, "virtlogd", "-d", "-p", "/run/libvirt/virtlogd.pid")
    _run(*enter, "libvirtd", "-d", "-l", "-p", "/run/libvirt/libvirtd.pid")
    _wait(lambda: _answers(host), timeout, f"libvirtd of host {host.name}")


def stop(name: str) -> None:
    """Stop host `name`: its guests, daemons, forwarder and namespaces; remove its directory."""
    root = hosts_root()
    with exclusive(root / ".lock"):
        _stop(root, name)


def _stop(root: Path, name: str) -> None:
    directory = root / name
    run = directory / "run"
    host = _load(directory)
    if host is not None and _ours(_pid(run / "libvirtd.pid"), "libvirtd") and _answers(host):
        listed = subprocess.run(
            ["virsh", "-c", host.uri, "list", "--all", "--name"],
            capture_output=True, text=True, check=False,
        ).stdout.split()  # fmt: skip
        for domain in listed:
            subprocess.run(["virsh", "-c", host.uri, "destroy", domain], capture_output=True)
            subprocess.run(["virsh", "-c", host.uri, "undefine", domain], capture_output=True)
    if host is not None and (run / "qemu").is_dir():
        for pid_file in (run / "qemu").glob("*.pid"):  # guests left while the daemon was away
            pid = host.qemu_pid(pid_file.stem)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    _kill(_pid(run / "libvirtd.pid"), "libvirtd")
    _kill(_pid(run / "virtlogd.pid"), "virtlogd")
    _kill(_pid(directory / "forward.pid"), _FORWARDER)
    _kill(_pid(directory / "holder.pid"), "sleep")  # its namespaces, veth and bridge go too
    shutil.rmtree(directory, ignore_errors=True)
    if not any(_load(d) for d in root.iterdir() if d.is_dir()):
        _kill(_pid(root / "hub" / "holder.pid"), "sleep")
        shutil.rmtree(root / "hub", ignore_errors=True)


def ceph_ports(conf_file: Path, monitor_port: int) -> list[int]:
    """The monitor's port and the OSDs' public ports of a local cluster."""
    dump = subprocess.run(
        ["ceph", "-c", str(conf_file), "osd", "dump", "-f", "json"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    ports = {monitor_port}
    for osd in json.loads(dump)["osds"]:
        for addr in osd["public_addrs"]["addrvec"]:
            ports.add(int(addr["addr"].rsplit(":", 1)[1]))
    return sorted(ports)


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["start", "stop"])
    parser.add_argument("name")
    parser.add_argument("--ceph-port", type=int, help="forward this local cluster's ports")
    args = parser.parse_args(argv)
    try:
        if args.command == "stop":
            stop(args.name)
            print(f"libvirt-host {args.name}: stopped")
            return 0
        ports: list[int] = []
        if args.ceph_port is not None:
            from virga_devstack.ceph import CephCluster

            ports = ceph_ports(CephCluster(args.ceph_port).conf_file, args.ceph_port)
        host = start(args.name, ceph_ports=ports)
    except (HostError, subprocess.CalledProcessError) as error:
        print(f"libvirt-host {args.name}: {error}", file=sys.stderr)
        return 1
    print(json.dumps({**asdict(host), "uri": host.uri, "peer_uri": host.peer_uri,
                      "migration_address": host.migration_address}))  # fmt: skip
    return 0
