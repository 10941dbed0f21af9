"""What the RBD driver does beyond the contract: an unreachable cluster, a missing pool, and
fencing a dead client so a removal need not wait for its watch to time out."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
import uuid
from pathlib import Path

import pytest
import rados
import rbd

from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import STORAGE_USER, client_keyring
from virga_storage.drivers.base import StorageError, StorageUnavailable
from virga_storage.drivers.rbd import RbdDriver

MiB = 1 << 20


async def test_an_unreachable_cluster_is_unavailable(
    ceph_cluster: CephCluster, tmp_path: Path
) -> None:
    conf = tmp_path / "ceph.conf"
    with socket.socket() as probe:  # a port no monitor listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf.write_text(f"[global]\nmon host = [v1:127.0.0.1:{port}]\n")
    driver = RbdDriver(conf, ceph_cluster.keyring, ceph_cluster.pool, connect_timeout=2)
    with pytest.raises(StorageUnavailable, match="cannot connect"):
        await driver.connect()
    await driver.close()


async def test_a_missing_pool_is_named(ceph_cluster: CephCluster) -> None:
    driver = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, "no-such-pool")
    with pytest.raises(StorageError, match="pool 'no-such-pool' does not exist"):
        await driver.connect()
    await driver.close()


@pytest.mark.parametrize("user", ["admin", STORAGE_USER])
async def test_a_fenced_removal_breaks_a_dead_writers_lock_at_once(
    ceph_cluster: CephCluster, user: str
) -> None:
    """A writer that holds the image's exclusive lock (as a storage process killed while
    importing does until its watch expires) does not hold up a fenced removal. It works with
    the storage service's own user as with the admin: what fencing needs (lock_break,
    blocklist_add) is within `mon 'profile rbd'`."""
    keyring = ceph_cluster.keyring if user == "admin" else client_keyring(ceph_cluster, user)
    driver = RbdDriver(ceph_cluster.conf_file, keyring, ceph_cluster.pool, user=user)
    await driver.connect()
    name = f"fence-{uuid.uuid4().hex[:8]}"
    writer = rados.Rados(
        conffile=str(ceph_cluster.conf_file), rados_id=user, conf={"keyring": str(keyring)}
    )
    writer.connect()
    ioctx = writer.open_ioctx(ceph_cluster.pool)
    try:
        rbd.RBD().create(ioctx, name, 4 * MiB)
        image = rbd.Image(ioctx, name)
        image.write(b"x" * 4096, 0)  # takes the exclusive lock
        assert image.is_exclusive_lock_owner()
        started = time.monotonic()
        await asyncio.wait_for(driver.remove(name, fence=True), 20)
        assert time.monotonic() - started < 10  # not the 30 s watch timeout
        assert name not in await driver.list()
        with pytest.raises(rbd.Error):  # fenced: the old writer cannot write any more
            image.write(b"y" * 4096, 0)
    finally:
        with contextlib.suppress(Exception):
            image.close()
        ioctx.close()
        writer.shutdown()
        await driver.close()


HOLDER = """
import sys, time, rados, rbd
cluster = rados.Rados(conffile=sys.argv[1], conf={"keyring": sys.argv[2]})
cluster.connect()
image = rbd.Image(cluster.open_ioctx(sys.argv[3]), sys.argv[4])  # a watch, no lock yet
print("open", flush=True)
time.sleep(600)
"""


async def test_a_fenced_removal_cuts_off_a_dead_client_that_never_wrote(
    ceph_cluster: CephCluster,
) -> None:
    """A storage process killed between opening an image and its first write holds no lock,
    only a watch; the removal would be refused ("image is busy") until the watch times out.
    Fencing blocklists the watcher, so the removal goes through well before that."""
    driver = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, ceph_cluster.pool)
    await driver.connect()
    name = f"fence-{uuid.uuid4().hex[:8]}"
    await driver.create_volume(name, 4 * MiB)
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        HOLDER,
        str(ceph_cluster.conf_file),
        str(ceph_cluster.keyring),
        ceph_cluster.pool,
        name,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"open\n"
        holder.kill()
        await holder.wait()
        started = time.monotonic()
        await asyncio.wait_for(driver.remove(name, fence=True), 40)
        assert time.monotonic() - started < 15  # not the 30 s watch timeout
        assert name not in await driver.list()
    finally:
        if holder.returncode is None:
            holder.kill()
            await holder.wait()
        await driver.remove(name, fence=True)
        await driver.close()
