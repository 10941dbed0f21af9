"""`make up` runs a storage service the gateway streams image uploads to: on the devstack's
Ceph cluster when it started, else with volumes in the service's memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from virga_devstack import ceph, stack_services
from virga_devstack.ceph_users import STORAGE_USER, keyring_path


@pytest.fixture(autouse=True)
def _secrets_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # services() makes the admin token in ./.virga


def by_name(cluster: ceph.CephCluster | None) -> dict[str, dict[str, str]]:
    return {p.name: p.env for p in stack_services.services(9092, 8080, "test:///default", cluster)}


def test_the_gateway_streams_uploads_to_the_storage_service_make_up_starts() -> None:
    processes = by_name(None)
    storage_port = processes["storage"]["VIRGA_HTTP_PORT"]
    assert processes["gateway"]["VIRGA_STORAGE_URL"] == f"http://127.0.0.1:{storage_port}"
    assert processes["storage"]["VIRGA_CEPH_CONF"] == "memory://"


def test_with_the_devstack_cluster_volumes_live_in_its_pool(tmp_path: Path) -> None:
    cluster = ceph.CephCluster(16999, state_root=tmp_path)
    storage = by_name(cluster)["storage"]
    # Its own cephx user's keyring, never client.admin's (issue #13.3).
    assert (storage["VIRGA_CEPH_CONF"], storage["VIRGA_CEPH_KEYRING"]) == (
        str(cluster.conf_file),
        str(keyring_path(cluster, STORAGE_USER)),
    )
    assert storage["VIRGA_CEPH_USER"] == STORAGE_USER
    assert storage["VIRGA_CEPH_POOL"] == cluster.pool
