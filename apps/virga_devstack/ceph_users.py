"""The cephx users of a local cluster: one per service and per compute host, with the least
caps, so that no Virga process ever runs as `client.admin`.

Caps (Ceph's own profiles): `mon 'profile rbd'` lets a client read the maps and blocklist
another client, which the storage service's fencing (`lock_break`, `blocklist_add`) needs;
`osd 'profile rbd pool=<pool>'` gives read and write to RBD images of that one pool and
nothing else; `profile rbd-read-only` reads only.
"""

from __future__ import annotations

from pathlib import Path

from virga_cli.host_setup import CephxError, compute_cephx_user, create_cephx_user
from virga_devstack.ceph import CephCluster, CephError

STORAGE_USER = "virga-storage"
"""The storage service's cephx user (the entity is `client.virga-storage`)."""


def compute_user(host: str) -> str:
    """The compute agent of `host`'s cephx user: one per host, so one can be cut off alone."""
    return compute_cephx_user(host)


def keyring_path(cluster: CephCluster, user: str) -> Path:
    """Where `client_keyring` writes `client.<user>`'s keyring, next to the cluster's conf."""
    return cluster.directory / f"ceph.client.{user}.keyring"


def make_service_users(cluster: CephCluster, host: str) -> list[Path]:
    """The storage service's user and `host`'s compute agent's, with their keyrings."""
    return [client_keyring(cluster, user) for user in (STORAGE_USER, compute_user(host))]


def client_keyring(cluster: CephCluster, user: str, *, read_only: bool = False) -> Path:
    """Make `client.<user>` on `cluster` (if it is not there yet) with RBD caps on the
    cluster's pool only, and write its keyring (mode 0600); its path. As an operator's
    `virga host add` does (`virga_cli.host_setup.create_cephx_user`)."""
    try:
        return create_cephx_user(
            cluster.conf_file, user, cluster.pool, keyring_path(cluster, user), read_only=read_only
        )
    except CephxError as error:
        raise CephError(str(error)) from error
