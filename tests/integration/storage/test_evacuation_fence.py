"""An evacuation's fence against real Ceph: the storage service, as its own cephx user,
breaks the exclusive lock a dead host's guest holds on its boot volume; that client (the
host's compute user, as its QEMU opens the disk) is blocklisted and its next write fails,
while the destination's client opens the same image and writes (the rebuild)."""

from __future__ import annotations

import contextlib
import uuid

import pytest
import rados
import rbd

from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import STORAGE_USER, client_keyring, compute_user
from virga_events.catalog.storage import InstanceDisksFenced
from virga_storage.drivers.rbd import RbdDriver
from virga_storage.effects.fencing import FenceEffects
from virga_storage.effects.intents import FenceDisks

MiB = 1 << 20


def client(cluster: CephCluster, user: str) -> rados.Rados:
    keyring = client_keyring(cluster, user)
    connection = rados.Rados(
        conffile=str(cluster.conf_file), rados_id=user, conf={"keyring": str(keyring)}
    )
    connection.connect(timeout=30)
    return connection


async def test_the_fence_blocklists_the_dead_hosts_guest_and_the_destination_writes(
    ceph_cluster: CephCluster,
) -> None:
    storage_keyring = client_keyring(ceph_cluster, STORAGE_USER)
    driver = RbdDriver(
        ceph_cluster.conf_file, storage_keyring, ceph_cluster.pool, user=STORAGE_USER
    )
    await driver.connect()
    instance = f"evac-{uuid.uuid4().hex[:8]}"
    name = f"volume-{instance}"
    await driver.create_volume(name, 4 * MiB)
    # Fixed host names: `ceph auth get-or-create` makes these two users once, for every run.
    dead = client(ceph_cluster, compute_user("evac-fence-a"))
    survivor = client(ceph_cluster, compute_user("evac-fence-b"))
    guest = rbd.Image(dead.open_ioctx(ceph_cluster.pool), name)
    try:
        guest.write(b"a" * 4096, 0)  # as the old QEMU does: it holds the exclusive lock
        assert guest.is_exclusive_lock_owner()

        [emit] = await FenceEffects(driver).fence(
            FenceDisks(instance, "t-1", "flow-1", "fence", (name,))
        )
        assert emit.payload == InstanceDisksFenced(
            flow_id="flow-1", step="fence", images=(name,), broken=(name,)
        )
        with pytest.raises(rbd.Error):  # blocklisted: the old guest cannot write any more
            guest.write(b"z" * 4096, 0)

        with rbd.Image(survivor.open_ioctx(ceph_cluster.pool), name) as rebuilt:
            assert rebuilt.read(0, 4096) == b"a" * 4096  # the disk as the guest left it
            rebuilt.write(b"b" * 4096, 0)
            assert rebuilt.is_exclusive_lock_owner()
        assert await driver.fence(name) is False  # nobody holds it now: nothing to break
    finally:
        with contextlib.suppress(Exception):
            guest.close()
        for connection in (dead, survivor):
            with contextlib.suppress(Exception):
                connection.shutdown()
        await driver.remove(name, fence=True)
        await driver.close()
