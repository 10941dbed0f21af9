"""A cold resize's redefinition on a real TCG guest (qemu:///system): Virga's guest image booted
from its kernel and initramfs, stopped, redefined with 2 vCPUs and 384 MiB, started again: the
domain's XML and QEMU's own view show the new size, and the guest boots to its ready line.
"""

from __future__ import annotations

import asyncio
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest
from tests.integration.compute.test_qemu_guest_power import URI, guest, remove_test_domains

from virga_compute.core.spec import DirectKernelBoot, DomainState, InstanceSpec
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_devstack.guest import READY_LINE, GuestBoot

pytestmark = [pytest.mark.libvirt, pytest.mark.timeout(300)]

__all__ = ["guest"]  # the module-scoped fixture, shared


@pytest.fixture
async def driver(libvirtd: None, tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    settings = DomainSettings(domain_type="qemu", console_log_dir=str(tmp_path))
    driver = LibvirtDriver(URI, instances_path=str(tmp_path), settings=settings, grace_period=0)
    await driver.connect()
    try:
        yield driver
    finally:
        await driver.close()
        remove_test_domains(URI)  # a failed test leaves no guest behind


def console_text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


async def wait_for_line(path: Path, line: str, seconds: float, after: int = 0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        text = console_text(path)
        if line in text[after:]:
            return
        assert asyncio.get_running_loop().time() < deadline, text[-2000:]
        await asyncio.sleep(0.5)


async def test_a_tcg_guest_is_redefined_with_more_vcpus_and_memory_and_boots(
    driver: LibvirtDriver, guest: GuestBoot, tmp_path: Path
) -> None:
    instance_id = f"i-qpow-{uuid.uuid4().hex[:8]}"  # the prefix remove_test_domains sweeps
    boot = DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline)
    spec = InstanceSpec(instance_id=instance_id, name="resized", vcpus=1, ram_mb=256, boot=boot)
    await driver.spawn(spec)
    console = tmp_path / f"{domain_name(instance_id)}.log"
    await wait_for_line(console, READY_LINE, 120)
    await driver.stop(instance_id, grace_period=0)
    await driver.redefine(instance_id, vcpus=2, ram_mb=384)
    conn = libvirt.open(URI)
    try:
        dom = conn.lookupByName(domain_name(instance_id))
        defined = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert defined.findtext("memory") == str(384 * 1024)
        assert defined.findtext("vcpu") == "2"
        seen = len(console_text(console))
        await driver.start(instance_id)
        assert (await driver.get_info(instance_id)).state is DomainState.RUNNING
        state, max_kib, _, vcpus, _ = dom.info()
        assert (state, max_kib, vcpus) == (libvirt.VIR_DOMAIN_RUNNING, 384 * 1024, 2)
        # QEMU itself was started with the new size.
        live = ET.fromstring(dom.XMLDesc(0))
        assert live.findtext("vcpu") == "2"
        await wait_for_line(console, READY_LINE, 120, after=seen)
    finally:
        conn.close()
    await driver.destroy(instance_id)
