"""The local Ceph cluster of `python -m virga_devstack ceph`: lifecycle by pid, own files."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.ports import free_port

from virga_devstack import ceph_bindings
from virga_devstack.ceph import CephCluster, CephError
from virga_devstack.localproc import process_exists


def _cli(cluster: CephCluster, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "virga_devstack", "ceph", command, "--port", str(cluster.port)],
        env={**os.environ, "VIRGA_STATE_DIR": str(cluster.directory.parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def test_start_status_stop_through_the_cli(tmp_path: Path) -> None:
    cluster = CephCluster(free_port(), state_root=tmp_path)
    try:
        started = _cli(cluster, "start")
        assert started.returncode == 0, started.stderr
        assert f"started {cluster.monitor} in" in started.stdout
        pids = {daemon: cluster.pid(daemon) for daemon in ("mon", "osd")}
        assert None not in pids.values()
        assert "/etc/ceph" not in cluster.conf_file.read_text()
        again = _cli(cluster, "start")
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        assert {daemon: cluster.pid(daemon) for daemon in ("mon", "osd")} == pids
        assert _cli(cluster, "status").returncode == 0
        stopped = _cli(cluster, "stop")
        assert stopped.returncode == 0, stopped.stderr
        assert f"stopped {cluster.monitor}" in stopped.stdout
        assert cluster.pid("mon") is None
        assert cluster.pid("osd") is None
        for pid in pids.values():
            assert pid is not None
            assert not process_exists(pid)  # gone, or a zombie not yet reaped by init
        status = _cli(cluster, "status")
        assert status.returncode == 1
        assert "not running" in status.stdout
    finally:
        cluster.stop()


def test_a_pid_file_naming_another_process_is_not_trusted(tmp_path: Path) -> None:
    cluster = CephCluster(free_port(), state_root=tmp_path)
    cluster.directory.mkdir(parents=True)
    (cluster.directory / "mon.pid").write_text(f"{os.getpid()}\n")
    assert cluster.pid("mon") is None
    assert cluster.stop() is False
    assert Path(f"/proc/{os.getpid()}").exists()


def test_a_port_taken_by_another_process_is_named(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        cluster = CephCluster(listener.getsockname()[1], state_root=tmp_path)
        with pytest.raises(CephError, match="already in use"):
            cluster.start()
    assert cluster.pid("mon") is None


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CephError, match="apt-get install ceph-mon ceph-osd ceph-common"):
        CephCluster(free_port(), state_root=tmp_path).start()


def test_link_bindings_exposes_only_rados_and_rbd(tmp_path: Path) -> None:
    pth = ceph_bindings.link_bindings(tmp_path)
    links = Path(pth.read_text().strip())
    assert links.parent == tmp_path
    assert sorted(path.name.split(".")[0] for path in links.iterdir()) == ["rados", "rbd"]
    assert all(path.resolve().parent == ceph_bindings.DIST_PACKAGES for path in links.iterdir())
    ceph_bindings.link_bindings(tmp_path)  # again: replaces its links, adds nothing
    assert len(list(links.iterdir())) == 2
