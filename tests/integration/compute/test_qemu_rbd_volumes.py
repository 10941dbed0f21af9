"""A real guest on RBD: the agent boots a TCG guest from a boot volume in the local Ceph cluster
(cephx key handed to libvirt as a secret), then hot-plugs and unplugs a second volume.

The guest is Debian's cloud kernel with a busybox initramfs (`virga_devstack.guest`): it
answers PCI hot-unplug, which firmware alone never does, and prints on its console the disks
it sees with their serials, so the test checks the guest's view as well as the live XML.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest
import rados
import rbd
from tests.integration.compute.agent_harness import (
    Cloud,
    Hypervisor,
    request_event,
    running_agent,
    wait_until,
)

from virga_compute.ceph_access import CephSettings, settings_from_env
from virga_compute.core.spec import DirectKernelBoot, DomainState
from virga_compute.drivers.base import ComputeDriver
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import client_keyring, compute_user
from virga_devstack.guest import DISKS_PREFIX, READY_LINE, GuestBoot, ensure_guest
from virga_events.catalog.attachments import VolumeAttachRequested, VolumeDetachRequested
from virga_events.catalog.storage import VolumeCreated, VolumeExtended

pytestmark = [pytest.mark.kafka, pytest.mark.libvirt]

URI = "qemu:///system"
MIB = 1 << 20
GIB = 1 << 30


@pytest.fixture(scope="module")
def guest() -> GuestBoot:
    return ensure_guest()


class QemuHypervisor(Hypervisor):
    """libvirtd's QEMU driver, TCG domains, console logs kept in `console_dir`."""

    kind = "qemu"

    def __init__(self, ceph: CephSettings, console_dir: Path) -> None:
        self.ceph = ceph
        self.console_dir = console_dir

    async def new_driver(self) -> ComputeDriver:
        settings = DomainSettings(domain_type="qemu", console_log_dir=str(self.console_dir))
        return LibvirtDriver(
            URI,
            instances_path=str(self.console_dir),
            settings=settings,
            ceph_secret=self.ceph.secret(),
        )

    async def release(self, driver: ComputeDriver) -> None:
        await driver.close()

    def console(self, instance_id: str) -> str:
        path = self.console_dir / f"{domain_name(instance_id)}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def disks_seen(self, instance_id: str) -> str | None:
        """The guest's last report of its disks, e.g. 'vda=abc vdb=def'."""
        lines = [
            line.removeprefix(DISKS_PREFIX).strip()
            for line in self.console(instance_id).splitlines()
            if line.startswith(DISKS_PREFIX)
        ]
        return lines[-1] if lines else None

    def live_disks(self, instance_id: str) -> dict[str, str]:
        """Target -> RBD name of the running domain's disks."""
        conn = libvirt.open(URI)
        try:
            xml = conn.lookupByName(domain_name(instance_id)).XMLDesc(0)
        finally:
            conn.close()
        disks = {}
        for disk in ET.fromstring(xml).findall("devices/disk"):
            target, source = disk.find("target"), disk.find("source")
            assert target is not None
            assert source is not None
            assert source.get("protocol") == "rbd"
            disks[target.get("dev", "")] = source.get("name", "")
        return disks

    def capacity(self, instance_id: str, target_dev: str) -> int:
        """The size QEMU gives the guest for the disk at `target_dev`."""
        conn = libvirt.open(URI)
        try:
            return int(conn.lookupByName(domain_name(instance_id)).blockInfo(target_dev)[0])
        finally:
            conn.close()

    async def state(self, instance_id: str) -> DomainState:
        driver = await self.new_driver()
        try:
            return (await driver.get_info(instance_id)).state
        finally:
            await driver.close()


def _grow(cluster: CephCluster, name: str, size: int) -> None:
    keyring = {"keyring": str(cluster.keyring)}
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf=keyring) as client,
        client.open_ioctx(cluster.pool) as ioctx,
        rbd.Image(ioctx, name) as image,
    ):
        image.resize(size)


def _size(cluster: CephCluster, name: str) -> int:
    keyring = {"keyring": str(cluster.keyring)}
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf=keyring) as client,
        client.open_ioctx(cluster.pool) as ioctx,
        rbd.Image(ioctx, name, read_only=True) as image,
    ):
        return int(image.size())


def _images(cluster: CephCluster, create: dict[str, int], remove: list[str]) -> None:
    keyring = {"keyring": str(cluster.keyring)}
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf=keyring) as client,
        client.open_ioctx(cluster.pool) as ioctx,
    ):
        for name, size in create.items():
            rbd.RBD().create(ioctx, name, size)
        for name in remove:
            with contextlib.suppress(rbd.ImageNotFound):
                rbd.RBD().remove(ioctx, name)


@pytest.fixture
async def qemu_host(
    libvirtd: None, ceph_cluster: CephCluster, tmp_path: Path
) -> AsyncIterator[QemuHypervisor]:
    # The agent's own cephx user (as the local stack makes it), never client.admin.
    user = compute_user("qrbd-host")
    keyring = client_keyring(ceph_cluster, user)
    ceph = settings_from_env(
        {
            "VIRGA_CEPH_CONF": str(ceph_cluster.conf_file),
            "VIRGA_CEPH_USER": user,
            "VIRGA_CEPH_KEYRING": str(keyring),
        }
    )
    assert ceph is not None
    assert ceph.user == user  # the local cluster runs cephx: the secret path is exercised
    host = QemuHypervisor(ceph, tmp_path)
    try:
        yield host
    finally:
        conn = libvirt.open(URI)
        try:
            for dom in conn.listAllDomains(0):
                if dom.name().startswith("virga-i-qrbd"):
                    if dom.isActive():
                        dom.destroy()
                    dom.undefine()
            # Absent if the test failed before the agent connected.
            with contextlib.suppress(libvirt.libvirtError):
                conn.secretLookupByUUIDString(ceph.secret_uuid).undefine()
        finally:
            conn.close()


async def test_a_guest_boots_from_rbd_and_takes_and_gives_back_a_second_volume(
    cloud: Cloud, qemu_host: QemuHypervisor, ceph_cluster: CephCluster, guest: GuestBoot
) -> None:
    instance_id, volume_id = f"i-qrbd-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())
    boot_image, data_image = f"volume-{instance_id}", f"volume-{volume_id}"
    # What the storage service would have made: a boot volume and a blank data volume.
    await asyncio.to_thread(_images, ceph_cluster, {boot_image: 64 * MIB, data_image: 32 * MIB}, [])
    boot = DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline)
    try:
        async with running_agent(
            cloud, qemu_host, ready_seconds=60, ceph=qemu_host.ceph, direct_boot=boot
        ):
            await cloud.schedule(instance_id, image="img-1")
            made = VolumeCreated(name="boot", size_gb=1, instance_id=instance_id)
            await cloud.write("storage", request_event(made, instance_id, "storage"))
            await cloud.wait_for("InstanceStarted", instance_id, seconds=60)
            assert qemu_host.live_disks(instance_id) == {"vda": f"rbd/{boot_image}"}
            # QEMU opened the RBD image through librbd: the guest's kernel sees it.
            await wait_until(lambda: READY_LINE in qemu_host.console(instance_id), 60)
            seen_boot = f"vda={instance_id[:20]}"
            await wait_until(lambda: qemu_host.disks_seen(instance_id) == seen_boot, 30)

            attach = VolumeAttachRequested(instance_id=instance_id)
            await cloud.write("gateway", request_event(attach, volume_id, "gateway"))
            await cloud.wait_for("VolumeAttached", volume_id, seconds=60)
            [attached] = cloud.events("VolumeAttached", volume_id)
            assert attached.payload.target_dev == "vdb"
            assert qemu_host.live_disks(instance_id) == {
                "vda": f"rbd/{boot_image}",
                "vdb": f"rbd/{data_image}",
            }
            seen_both = f"{seen_boot} vdb={volume_id[:20]}"
            await wait_until(lambda: qemu_host.disks_seen(instance_id) == seen_both, 30)

            # The storage service grows the attached volume: the running guest is told.
            assert qemu_host.capacity(instance_id, "vdb") == 32 * MIB
            await asyncio.to_thread(_grow, ceph_cluster, data_image, GIB)
            grown = VolumeExtended(size_gb=1)
            await cloud.write("storage", request_event(grown, volume_id, "storage"))
            await wait_until(lambda: qemu_host.capacity(instance_id, "vdb") == GIB, 30)
            # A stale growth (re-decided after a crash) never shrinks the volume.
            driver = await qemu_host.new_driver()
            try:
                await driver.resize_disk(instance_id, "vdb", 32 * MIB)
            finally:
                await driver.close()
            assert qemu_host.capacity(instance_id, "vdb") == GIB
            assert await asyncio.to_thread(_size, ceph_cluster, data_image) == GIB

            detach = VolumeDetachRequested(instance_id=instance_id)
            await cloud.write("gateway", request_event(detach, volume_id, "gateway"))
            await cloud.wait_for("VolumeDetached", volume_id, seconds=60)
            assert qemu_host.live_disks(instance_id) == {"vda": f"rbd/{boot_image}"}
            await wait_until(lambda: qemu_host.disks_seen(instance_id) == seen_boot, 30)

            await cloud.delete(instance_id)
            await cloud.wait_for("InstanceDeleted", instance_id, seconds=60)
            assert await qemu_host.state(instance_id) is DomainState.MISSING
        assert [e.type for e in cloud.compute if e.aggregate_id == volume_id] == [
            "VolumeAttached",
            "VolumeDetached",
        ]
    finally:
        await asyncio.to_thread(_images, ceph_cluster, {}, [boot_image, data_image])
