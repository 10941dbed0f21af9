"""A cold resize's redefinition on each driver: libvirt's test hypervisor and the memory one.

On `test:///default` the domain's definition is read back as libvirt keeps it: its memory
and vCPUs are the new ones, its disks and NICs the old, and it runs again once started.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from tests.integration.compute.test_driver_contract import TEST_URI, spec

from virga_compute.core.spec import DomainState
from virga_compute.drivers.base import DriverError
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.drivers.libvirt_resize import with_flavor
from virga_compute.drivers.memory import MemoryComputeDriver


@pytest.fixture
def side() -> Iterator[Any]:
    """A plain connection to the same test hypervisor (one per process, reset when the last
    connection closes): what libvirt itself says, beside the driver."""
    conn = libvirt.open(TEST_URI)
    try:
        assert [d.name() for d in conn.listAllDomains(0)] == ["test"], "not fresh"
        yield conn
    finally:
        conn.close()


@pytest.fixture
async def driver(side: Any, tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as driver:
        yield driver


def defined(side: Any, instance_id: str = "i-1") -> ET.Element:
    dom = side.lookupByName(domain_name(instance_id))
    return ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))


async def test_a_stopped_domain_is_redefined_with_the_new_vcpus_and_memory_and_runs(
    driver: LibvirtDriver, side: Any
) -> None:
    await driver.spawn(spec(ram_mb=256))
    before = defined(side)
    await driver.stop("i-1", grace_period=0)
    await driver.redefine("i-1", vcpus=2, ram_mb=512)
    after = defined(side)
    assert after.findtext("memory") == str(512 * 1024)  # libvirt keeps KiB
    assert after.find("memory").get("unit") == "KiB"  # type: ignore[union-attr]
    assert after.findtext("vcpu") == "2"
    assert after.findtext("uuid") == before.findtext("uuid")
    assert ET.tostring(after.find("devices")) == ET.tostring(before.find("devices"))  # type: ignore[arg-type]
    await driver.start("i-1")
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING
    dom = side.lookupByName(domain_name("i-1"))
    state, max_kib, _, vcpus, _ = dom.info()
    assert (state, max_kib, vcpus) == (libvirt.VIR_DOMAIN_RUNNING, 512 * 1024, 2)
    await driver.destroy("i-1")


async def test_a_running_domain_is_refused_and_keeps_its_definition(
    driver: LibvirtDriver, side: Any
) -> None:
    await driver.spawn(spec(ram_mb=256))
    with pytest.raises(DriverError, match="stop it"):
        await driver.redefine("i-1", vcpus=4, ram_mb=1024)
    assert defined(side).findtext("memory") == str(256 * 1024)
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING
    await driver.destroy("i-1")


async def test_the_memory_driver_redefines_only_a_stopped_domain() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(spec(ram_mb=256))
    with pytest.raises(DriverError):
        await driver.redefine("i-1", vcpus=2, ram_mb=512)
    await driver.stop("i-1")
    await driver.redefine("i-1", vcpus=2, ram_mb=512)
    assert driver.defined_size("i-1") == (2, 512)


def test_the_new_size_replaces_a_hotplug_ceiling_and_leaves_the_rest() -> None:
    definition = (
        "<domain type='kvm'><name>n</name><memory unit='KiB'>262144</memory>"
        "<currentMemory unit='KiB'>262144</currentMemory>"
        "<vcpu placement='static' current='1'>2</vcpu><devices><disk/></devices></domain>"
    )
    root = ET.fromstring(with_flavor(definition, 4, 1024))
    assert (root.findtext("memory"), root.find("memory").get("unit")) == ("1024", "MiB")  # type: ignore[union-attr]
    assert root.findtext("currentMemory") == "1024"
    vcpu = root.find("vcpu")
    assert vcpu is not None
    assert (vcpu.text, vcpu.get("current"), vcpu.get("placement")) == ("4", None, "static")
    assert root.find("devices/disk") is not None
