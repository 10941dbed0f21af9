"""Config drives on real libvirt: an instance placed with `config_drive` gets an ISO 9660 image
(label `config-2`, OpenStack layout) attached as a read-only CD-ROM, beside the SMBIOS
identity cloud-init looks for; deleting the instance removes the image, and so does a spawn
that fails.

On `test:///default` through a running agent and the test broker; on `qemu:///system` the
driver boots Virga's busybox guest with the drive attached, and QEMU's own command line shows
the SMBIOS tables it is given.
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from tests.integration.compute.agent_harness import (
    HOST,
    TINY,
    Cloud,
    LibvirtHypervisor,
    request_event,
    running_agent,
    wait_until,
)
from tests.integration.compute.test_libvirt_driver import (
    _injected_failure,
    _open_with_faulty_domains,
)

from virga_compute.core.spec import ConfigDrive, DirectKernelBoot, DomainState, InstanceSpec
from virga_compute.drivers.base import DriverError
from virga_compute.drivers.domain_xml import DomainSettings, domain_name, domain_uuid
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_devstack.guest import READY_LINE, GuestBoot, ensure_guest
from virga_events import Envelope
from virga_events.catalog.scheduler import InstanceScheduled

pytestmark = pytest.mark.libvirt

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGNvbmZpZy1kcml2ZS10ZXN0LWtleS1ieXRlcw== t@h"
SCRIPT = b"#!/bin/sh\necho configured > /var/tmp/marker\n"
QEMU_URI = "qemu:///system"


def read_iso(iso: Path, into: Path) -> dict[str, Any]:
    """The ISO's volume label and OpenStack files, extracted with xorriso."""
    into.mkdir()
    extract = ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(into)]
    subprocess.run(extract, check=True, capture_output=True)
    label = subprocess.run(
        ["isoinfo", "-d", "-i", str(iso)], check=True, capture_output=True, text=True
    ).stdout
    latest = into / "openstack" / "latest"
    return {
        "label": next(
            line.split(":", 1)[1].strip() for line in label.splitlines() if "Volume id" in line
        ),
        "meta": json.loads((latest / "meta_data.json").read_text()),
        "user_data": (latest / "user_data").read_bytes(),
    }


def placed_with_drive(instance_id: str) -> Envelope:
    event = InstanceScheduled(
        host=HOST,
        rack="r1",
        zone="az-9",
        attempt=1,
        name=f"web {instance_id}",
        flavor=TINY,
        hostname="web-1",
        key_name="laptop",
        public_keys=(KEY,),
        user_data=base64.b64encode(SCRIPT).decode(),
        config_drive=True,
    )
    return request_event(event, instance_id, "scheduler")


def cdrom_sources(xml: str) -> list[str | None]:
    root = ET.fromstring(xml)
    return [
        None if (source := disk.find("source")) is None else source.get("file")
        for disk in root.iterfind("devices/disk[@device='cdrom']")
    ]


# -- through the agent, on libvirt's test hypervisor --------------------------------------------


@pytest.mark.kafka
async def test_a_config_drive_instance_gets_its_iso_until_it_is_deleted(
    cloud: Cloud, libvirt_host: LibvirtHypervisor, tmp_path: Path
) -> None:
    instance_id = f"i-cd-{uuid.uuid4().hex[:8]}"
    iso = tmp_path / "config-drives" / f"{domain_name(instance_id)}.iso"
    async with running_agent(cloud, libvirt_host, zone="az-9"):
        await cloud.write("scheduler", placed_with_drive(instance_id))
        await cloud.wait_for("InstanceStarted", instance_id)
        dom = libvirt_host.side.lookupByName(domain_name(instance_id))
        definition = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        assert cdrom_sources(definition) == [str(iso)]
        root = ET.fromstring(definition)
        product = root.find("sysinfo[@type='smbios']/system/entry[@name='product']")
        assert product is not None
        assert product.text == "OpenStack Nova"
        drive = read_iso(iso, tmp_path / "extracted")
        assert drive["label"] == "config-2"
        assert drive["meta"]["uuid"] == instance_id
        assert drive["meta"]["hostname"] == "web-1"
        assert drive["meta"]["public_keys"] == {"laptop": KEY}
        assert drive["meta"]["availability_zone"] == "az-9"  # the host's zone
        assert drive["user_data"] == SCRIPT
        await cloud.delete(instance_id)
        await cloud.wait_for("InstanceDeleted", instance_id)
        assert not iso.exists()
        assert list(iso.parent.iterdir()) == []  # no scratch left either


async def test_a_spawn_that_fails_leaves_no_config_drive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = InstanceSpec("i-cd-fail", "web", 1, 128, config_drive=ConfigDrive("az-9"))
    monkeypatch.setattr(libvirt, "open", _open_with_faulty_domains(create=_injected_failure))
    async with LibvirtDriver("test:///default", instances_path=str(tmp_path)) as driver:
        with pytest.raises(DriverError, match="injected failure"):
            await driver.spawn(spec)
        assert await driver.list_instances() == []
    assert list((tmp_path / "config-drives").iterdir()) == []


# -- a real guest on qemu:///system -------------------------------------------------------------


@pytest.fixture
async def qemu_driver(libvirtd: None, tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    settings = DomainSettings(domain_type="qemu", console_log_dir=str(tmp_path))
    driver = LibvirtDriver(QEMU_URI, instances_path=str(tmp_path), settings=settings)
    async with driver:
        try:
            yield driver
        finally:
            for info in await driver.list_instances():
                if info.instance_id.startswith("i-cdq-"):
                    await driver.destroy(info.instance_id)  # a failed test leaves no guest


def qemu_smbios(instance_id: str) -> list[str]:
    """The `-smbios` arguments of the guest's QEMU process."""
    name = domain_name(instance_id)
    pid = int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    assert any(f"guest={name}" in arg for arg in argv)
    return [value for flag, value in itertools.pairwise(argv) if flag == "-smbios"]


@pytest.mark.timeout(600)
async def test_virgas_guest_boots_on_qemu_with_the_drive_and_the_smbios_identity(
    qemu_driver: LibvirtDriver, tmp_path: Path
) -> None:
    guest: GuestBoot = ensure_guest()
    instance_id = f"i-cdq-{uuid.uuid4().hex[:8]}"
    drive = ConfigDrive(
        "az-9", hostname="web-1", key_name="laptop", public_keys=(KEY,),
        user_data=base64.b64encode(SCRIPT).decode(),
    )  # fmt: skip
    boot = DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline)
    spec = InstanceSpec(instance_id, "web", 1, 256, boot=boot, config_drive=drive)
    await qemu_driver.spawn(spec)
    assert (await qemu_driver.get_info(instance_id)).state is DomainState.RUNNING
    iso = tmp_path / "config-drives" / f"{domain_name(instance_id)}.iso"
    conn = libvirt.open(QEMU_URI)
    try:
        live = conn.lookupByName(domain_name(instance_id)).XMLDesc(0)
    finally:
        conn.close()
    assert cdrom_sources(live) == [str(iso)]
    smbios = qemu_smbios(instance_id)
    uuid_text = domain_uuid(instance_id)
    assert smbios == [
        "type=1,manufacturer=Virga,product=OpenStack Nova,"
        f"serial={uuid_text},uuid={uuid_text},family=Virtual Machine",
        "type=3,manufacturer=Virga,asset=OpenStack Nova",
    ]
    console = tmp_path / f"{domain_name(instance_id)}.log"
    await wait_until(
        lambda: console.exists() and READY_LINE in console.read_text("utf-8", "replace"), 300
    )
    drive_files = read_iso(iso, tmp_path / "extracted")
    assert drive_files["meta"]["uuid"] == instance_id
    assert drive_files["user_data"] == SCRIPT
    await qemu_driver.destroy(instance_id)
    assert (await qemu_driver.get_info(instance_id)).state is DomainState.MISSING
    assert not iso.exists()
