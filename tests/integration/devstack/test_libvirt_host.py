"""`python -m virga_devstack libvirt-host start|stop NAME`: a libvirt host of its own in
namespaces, as the live-migration tests use two of them.

Checked from outside and inside: each host answers on its socket with a host UUID of its
own, the hosts reach each other on their network and the test Ceph cluster on their own
loopback; a second start finds the host running; a stop leaves no process, no directory
and no link behind, in the root namespace nothing was ever added.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from virga_devstack import libvirt_host
from virga_devstack.ceph import CephCluster
from virga_devstack.localproc import process_exists

pytestmark = [pytest.mark.libvirt]


def _links() -> set[str]:
    """Links in the root namespace that the hosts' could be called (other tests on the
    machine add and remove their own meanwhile)."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True)
    names = {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}
    return {name for name in names if name.startswith("vh") or name in ("br0", "hub")}


def _inside(host: libvirt_host.LibvirtHost, script: str) -> subprocess.CompletedProcess[str]:
    pid = Path(host.directory, "holder.pid").read_text().strip()
    return subprocess.run(
        ["nsenter", "-t", pid, "-m", "-n", "-u", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _host_uuid(host: libvirt_host.LibvirtHost) -> str:
    caps = subprocess.run(
        ["virsh", "-c", host.uri, "capabilities"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"<uuid>([0-9a-f-]+)</uuid>", caps)
    assert found is not None
    return found.group(1)


def _pids(host: libvirt_host.LibvirtHost) -> list[int]:
    """Its processes: namespace holder, Ceph forwarder, libvirtd and virtlogd."""
    files = ("holder.pid", "forward.pid", "run/libvirtd.pid", "run/virtlogd.pid")
    return [int(Path(host.directory, name).read_text()) for name in files]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "virga_devstack", "libvirt-host", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_two_hosts_reach_each_other_and_ceph_and_leave_nothing_behind(
    ceph_cluster: CephCluster,
) -> None:
    assert _links() == set()
    tag = uuid.uuid4().hex[:6]
    pids: list[int] = []
    names = (f"ta-{tag}", f"tb-{tag}")
    ports = libvirt_host.ceph_ports(ceph_cluster.conf_file, ceph_cluster.port)
    try:
        a = libvirt_host.start(names[0], ceph_ports=ports)
        started = _cli("start", names[1], "--ceph-port", str(ceph_cluster.port))
        assert started.returncode == 0, started.stderr
        shown = json.loads(started.stdout)
        b = libvirt_host.LibvirtHost(
            shown["name"], shown["directory"], shown["address"], shown["index"]
        )
        assert shown["uri"] == b.uri
        assert shown["migration_address"] == f"tcp://{b.address}"
        assert a.address != b.address

        # Idempotent: a second start, from another process too, finds each host running.
        holder = Path(b.directory, "holder.pid").read_text()
        again = _cli("start", names[1], "--ceph-port", str(ceph_cluster.port))
        assert json.loads(again.stdout)["directory"] == b.directory
        assert Path(b.directory, "holder.pid").read_text() == holder
        assert libvirt_host.start(names[0], ceph_ports=ports) == a

        assert _host_uuid(a) != _host_uuid(b)
        hostname = _inside(a, "hostname")
        assert hostname.stdout.strip() == names[0]
        # The hosts' network, with libvirtd on TCP to each other (peer-to-peer migration).
        peer = _inside(a, f"virsh -c {b.peer_uri} hostname")
        assert peer.stdout.strip() == names[1], peer.stderr
        # The Ceph cluster, on the namespace's own loopback, through the forwarder.
        health = _inside(b, f"timeout 30 ceph -c {ceph_cluster.conf_file} health")
        assert health.returncode == 0, health.stderr
        assert "HEALTH_" in health.stdout
        assert _links() == set()
        pids = [*_pids(a), *_pids(b)]
        pids.append(int((libvirt_host.hosts_root() / "hub" / "holder.pid").read_text()))
    finally:
        for name in names:
            libvirt_host.stop(name)
    assert _links() == set()
    for name in names:
        assert not (libvirt_host.hosts_root() / name).exists()
    for pid in pids:
        assert not process_exists(pid), Path(f"/proc/{pid}/cmdline").read_bytes()
