"""Each service's own cephx user against the real cluster (issue #13.3): the storage service's
user reaches its pool and no other; the local stack starts no service with `client.admin`'s
keyring. (That its fencing works with `mon 'profile rbd'` is tested with the admin's, in
test_rbd_driver.py.)"""

from __future__ import annotations

import base64
import contextlib
import subprocess
import uuid
from pathlib import Path

import pytest
import rados
import rbd

from virga_compute.config import ComputeConfig
from virga_devstack import stack_services
from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import (
    STORAGE_USER,
    client_keyring,
    compute_user,
    make_service_users,
)

MiB = 1 << 20
OTHER_POOL = "virga-other"


def _ceph(cluster: CephCluster, *command: str) -> str:
    return subprocess.run(
        ["ceph", "-c", str(cluster.conf_file), *command],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip


@pytest.fixture(scope="module")
def other_pool(ceph_cluster: CephCluster) -> str:
    """A second RBD pool on the cluster, with one image made by the admin."""
    _ceph(ceph_cluster, "osd", "pool", "create", OTHER_POOL, "8")
    _ceph(ceph_cluster, "osd", "pool", "application", "enable", OTHER_POOL, "rbd")
    with (
        rados.Rados(
            conffile=str(ceph_cluster.conf_file), conf={"keyring": str(ceph_cluster.keyring)}
        ) as admin,
        admin.open_ioctx(OTHER_POOL) as ioctx,
        contextlib.suppress(rbd.ImageExists),
    ):
        rbd.RBD().create(ioctx, "someone-elses", 4 * MiB)
    return OTHER_POOL


def test_the_storage_user_reaches_its_pool_and_no_other(
    ceph_cluster: CephCluster, other_pool: str
) -> None:
    keyring = client_keyring(ceph_cluster, STORAGE_USER)
    caps = _ceph(ceph_cluster, "auth", "get", f"client.{STORAGE_USER}")
    assert 'caps osd = "profile rbd pool=rbd"' in caps
    assert "allow *" not in caps
    name = f"own-{uuid.uuid4().hex[:8]}"
    with rados.Rados(
        conffile=str(ceph_cluster.conf_file), rados_id=STORAGE_USER, conf={"keyring": str(keyring)}
    ) as storage:
        with storage.open_ioctx(ceph_cluster.pool) as own:
            rbd.RBD().create(own, name, 4 * MiB)
            with rbd.Image(own, name) as image:
                image.write(b"x" * 4096, 0)
            rbd.RBD().remove(own, name)
        with storage.open_ioctx(other_pool) as other:
            with pytest.raises(rbd.PermissionError):
                rbd.RBD().create(other, name, 4 * MiB)
            with (
                pytest.raises(rbd.PermissionError),
                rbd.Image(other, "someone-elses", read_only=True) as image,
            ):
                image.read(0, 4096)
            with pytest.raises(rados.PermissionError):
                other.write_full("not-mine", b"x")
        # No admin powers: it cannot list the cluster's users and their keys.
        ret, _, _ = storage.mon_command('{"prefix": "auth ls", "format": "json"}', b"")
        assert ret == -13  # EACCES


def test_the_local_stack_hands_no_service_the_admin_keyring(
    ceph_cluster: CephCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # services() makes the admin token in ./.virga
    host = stack_services.host_name()
    make_service_users(ceph_cluster, host)  # as `make up` does once the cluster runs
    processes = stack_services.services(9092, 8774, "test:///default", ceph_cluster)
    admin_keyring = str(ceph_cluster.keyring)
    for process in processes:
        assert admin_keyring not in process.env.values(), process.name
        assert process.env.get("VIRGA_CEPH_USER") != "admin", process.name
    by_name = {p.name: p.env for p in processes}
    storage = by_name["storage"]
    assert storage["VIRGA_CEPH_USER"] == STORAGE_USER
    [compute] = [env for name, env in by_name.items() if name.startswith("compute-")]
    assert compute["VIRGA_HOST"] == host
    assert compute["VIRGA_CEPH_USER"] == compute_user(host)
    for env in (storage, compute):
        text = Path(env["VIRGA_CEPH_KEYRING"]).read_text()
        assert f"[client.{env['VIRGA_CEPH_USER']}]" in text
        assert "client.admin" not in text
    caps = _ceph(ceph_cluster, "auth", "get", f"client.{compute_user(host)}")
    assert 'caps osd = "profile rbd pool=rbd"' in caps


def test_a_compute_agent_told_no_user_runs_as_its_hosts_own(ceph_cluster: CephCluster) -> None:
    """Without VIRGA_CEPH_USER the agent hands QEMU `client.virga-compute-<host>`'s key (the
    one the cluster holds for that user), not the admin's."""
    host = stack_services.host_name()
    keyring = make_service_users(ceph_cluster, host)[1]
    config = ComputeConfig.from_env(
        {
            "VIRGA_HOST": host,
            "VIRGA_CEPH_CONF": str(ceph_cluster.conf_file),
            "VIRGA_CEPH_KEYRING": str(keyring),
        }
    )
    assert config.ceph is not None
    assert config.ceph.user == compute_user(host)
    secret = config.ceph.secret()
    assert secret is not None
    key = _ceph(ceph_cluster, "auth", "get-key", f"client.{compute_user(host)}").strip()
    assert secret.key == base64.b64decode(key)
    assert secret.key != base64.b64decode(
        _ceph(ceph_cluster, "auth", "get-key", "client.admin").strip()
    )
