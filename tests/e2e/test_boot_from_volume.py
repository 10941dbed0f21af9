"""Boot from image through the whole stack on real components: the gateway takes an image, the
storage service clones the boot volume on the local Ceph cluster (cephx), the compute agent
boots a TCG guest from it under qemu:///system, and a volume is attached and detached live."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from typing import Any

import libvirt
import pytest
import rados
import rbd
from tests.support.api import Api, new_tenant
from tests.support.domains import remove_tagged
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_compute.ceph_access import settings_from_env
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import ensure_guest

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt]

URI = "qemu:///system"
TAG = f"e2e-rbd-{uuid.uuid4().hex[:8]}"
"""The name of this module's instances, which their domains carry in their metadata."""
IMAGE = b"\0" * (512 << 10)  # the guest boots a kernel; the volume only has to be a disk


@pytest.fixture(scope="module")
def stack(
    libvirtd: None,
    kafka_bootstrap: str,
    ceph_cluster: CephCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    guest = ensure_guest()
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("rbd-stack"),
        (HostSpec("rbd-host", "rack-1", libvirt_uri=URI),),
        **on_ceph(ceph_cluster),
        guest_kernel=(str(guest.kernel), str(guest.initrd), guest.cmdline),
    )
    try:
        with stack.running():
            yield stack
    finally:
        remove_tagged(URI, TAG)
        _remove_secret(str(ceph_cluster.conf_file))


def _remove_secret(conf: str) -> None:
    """The cephx secret the stack's agent gave libvirtd (as its host's own user)."""
    ceph = settings_from_env({"VIRGA_CEPH_CONF": conf, "VIRGA_HOST": "rbd-host"})
    assert ceph is not None
    assert ceph.secret_uuid is not None
    connection = libvirt.open(URI)
    try:
        with contextlib.suppress(libvirt.libvirtError):
            connection.secretLookupByUUIDString(ceph.secret_uuid).undefine()
    finally:
        connection.close()


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "rbd") as api:
        yield api


async def _until(
    tenant: Api, path: str, check: Any, seconds: float = 90, expect: tuple[int, ...] = (200,)
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        view = await tenant.call("GET", path, expect=expect)
        if check(view):
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {view}")
        await asyncio.sleep(0.3)


def _live_disks(instance_id: str) -> dict[str, str]:
    connection = libvirt.open(URI)
    try:
        xml = connection.lookupByName(f"virga-{instance_id}").XMLDesc(0)
    finally:
        connection.close()
    disks = {}
    for disk in ET.fromstring(xml).findall("devices/disk"):
        target, source = disk.find("target"), disk.find("source")
        assert target is not None
        assert source is not None
        disks[target.get("dev", "")] = f"{source.get('protocol')}:{source.get('name')}"
    return disks


async def test_an_instance_from_an_image_runs_on_its_rbd_volume_and_takes_another(
    stack: Stack, tenant: Api, ceph_cluster: CephCluster
) -> None:
    async with tenant.session.post(
        f"{stack.gateway_url}/v1/images?name=blank",
        data=IMAGE,
        headers={"Authorization": f"Bearer {tenant.token}"},
    ) as reply:
        assert reply.status == 201, await reply.text()
        image = await reply.json()
    instance = await tenant.create_instance(TAG, image=image["id"])
    iid = instance["id"]
    data = await tenant.call("POST", "/v1/volumes", {"name": "data", "size_gb": 1})
    [running] = await tenant.wait_status([iid], {"RUNNING", "ERROR"}, seconds=120)
    assert running["status"] == "RUNNING", running
    pool = ceph_cluster.pool
    assert _live_disks(iid) == {"vda": f"rbd:{pool}/volume-{iid}"}

    await _until(tenant, f"/v1/volumes/{data['id']}", lambda v: v["status"] == "available")
    await tenant.call("POST", f"/v1/instances/{iid}/volumes", {"volume_id": data["id"]})
    attached = await _until(tenant, f"/v1/volumes/{data['id']}", lambda v: v["status"] == "in-use")
    assert _live_disks(iid) == {
        "vda": f"rbd:{pool}/volume-{iid}",
        "vdb": f"rbd:{pool}/volume-{data['id']}",
    }, attached

    await tenant.call("DELETE", f"/v1/instances/{iid}/volumes/{data['id']}")
    await _until(tenant, f"/v1/volumes/{data['id']}", lambda v: v["status"] == "available")
    assert _live_disks(iid) == {"vda": f"rbd:{pool}/volume-{iid}"}

    await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([iid], {"DELETED"}, seconds=60)
    await tenant.call("DELETE", f"/v1/volumes/{data['id']}")
    # The boot volume goes with the instance; then the image has no clone left.
    boot = f"/v1/volumes/{iid}"
    await _until(tenant, boot, lambda v: v.get("status") in (404, "deleted"), expect=(200, 404))
    await tenant.call("DELETE", f"/v1/images/{image['id']}")


def _lose_image(cluster: CephCluster, image_id: str) -> None:
    """The image's RBD image disappears behind Virga's back (an operator's mistake)."""
    keyring = {"keyring": str(cluster.keyring)}
    name = f"image-{image_id}"
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf=keyring) as client,
        client.open_ioctx(cluster.pool) as ioctx,
    ):
        with rbd.Image(ioctx, name) as image:
            for snapshot in image.list_snaps():
                if image.is_protected_snap(snapshot["name"]):
                    image.unprotect_snap(snapshot["name"])
                image.remove_snap(snapshot["name"])
        rbd.RBD().remove(ioctx, name)


async def test_a_boot_volume_that_cannot_be_made_puts_the_instance_in_error_at_once(
    stack: Stack, tenant: Api, ceph_cluster: CephCluster
) -> None:
    async with tenant.session.post(
        f"{stack.gateway_url}/v1/images?name=lost",
        data=IMAGE,
        headers={"Authorization": f"Bearer {tenant.token}"},
    ) as reply:
        assert reply.status == 201, await reply.text()
        image = await reply.json()
    await asyncio.to_thread(_lose_image, ceph_cluster, image["id"])
    instance = await tenant.create_instance(TAG, image=image["id"])
    [failed] = await tenant.wait_status([instance["id"]], {"ERROR", "RUNNING"}, seconds=60)
    assert failed["status"] == "ERROR"
    assert failed["fault"].startswith("boot volume failed: "), failed
    assert failed["host"] is None  # its claim is released
    history = await tenant.call("GET", f"/v1/instances/{instance['id']}/events")
    types = [entry["type"] for entry in history]
    assert types.count("InstanceScheduled") == 1  # never tried on another host
    assert types.index("InstanceFailed") < types.index("InstanceSchedulingFailed")
    await tenant.call("DELETE", f"/v1/instances/{instance['id']}")
    await tenant.wait_status([instance["id"]], {"DELETED"}, seconds=60)
