"""A resize that moves hosts, on libvirt's test hypervisor: two hosts, each a private
`test:///<node file>` (one per driver, as two libvirtd would be), the driver calls the two
agents make in the flow's order (`core.resize`): the old host stops the guest, the new host
defines it from the same disks with the new flavor (started if it ran, else only defined),
and only then the old host undefines its stopped domain. At no moment do both run it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.integration.compute.test_driver_contract import spec

from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.libvirt import LibvirtDriver

NODE = """<node>
  <cpu><mhz>2000</mhz><model>i686</model><active>4</active></cpu>
  <memory>8388608</memory>
</node>
"""


@pytest.fixture
async def hosts(tmp_path: Path) -> AsyncIterator[tuple[LibvirtDriver, LibvirtDriver]]:
    drivers = []
    for name in ("host-a", "host-b"):
        node = tmp_path / f"{name}.xml"
        node.write_text(NODE)
        path = tmp_path / name
        path.mkdir()
        drivers.append(LibvirtDriver(f"test://{node}", instances_path=str(path)))
    old, new = drivers
    async with old, new:
        yield old, new


async def state(driver: LibvirtDriver) -> DomainState:
    return (await driver.get_info("i-1")).state


async def size(driver: LibvirtDriver) -> tuple[int, int]:
    """(vCPUs, MiB) of the domain as that host's libvirt keeps it (each open of a node file
    is a fresh hypervisor: only the driver's own connection sees its domains)."""

    def read(conn: Any) -> tuple[int, int]:
        definition = conn.lookupByName(domain_name("i-1")).XMLDesc(0)
        root = ET.fromstring(definition)
        return int(root.findtext("vcpu") or 0), int(root.findtext("memory") or 0) // 1024

    return await driver._call(read)


@pytest.mark.parametrize("ran", [True, False])
async def test_the_guest_moves_to_the_new_host_with_the_new_flavor_and_runs_once(
    hosts: tuple[LibvirtDriver, LibvirtDriver], ran: bool
) -> None:
    old, new = hosts
    small = spec(ram_mb=256)
    await old.spawn(small, start=ran)
    # `stop`: the old host stops it (a stopped one stays stopped).
    await old.stop("i-1", grace_period=0)
    assert await state(old) is DomainState.SHUTOFF
    # `redefine` on the new host: the same disks and NIC, the new vCPUs and memory.
    await new.spawn(replace(small, vcpus=2, ram_mb=512), start=ran)
    assert await state(new) is (DomainState.RUNNING if ran else DomainState.SHUTOFF)
    assert await state(old) is DomainState.SHUTOFF  # never both running
    assert await size(new) == (2, 512)
    assert await size(old) == (1, 256)
    # `release`: the old host's stopped domain goes; its disks are the storage service's.
    await old.destroy("i-1")
    assert await state(old) is DomainState.MISSING
    assert [d.instance_id for d in await old.list_instances()] == []
    assert [(d.instance_id, d.state) for d in await new.list_instances()] == [
        ("i-1", DomainState.RUNNING if ran else DomainState.SHUTOFF)
    ]
    await new.destroy("i-1")


async def test_a_repeated_definition_on_the_new_host_changes_nothing(
    hosts: tuple[LibvirtDriver, LibvirtDriver],
) -> None:
    _, new = hosts
    moved = spec(ram_mb=512)
    await new.spawn(moved, start=False)
    await new.spawn(moved, start=False)  # a re-sent request: defined once, still stopped
    assert await state(new) is DomainState.SHUTOFF
    await new.spawn(moved)  # and a later start runs it as defined
    assert await state(new) is DomainState.RUNNING
    assert await size(new) == (1, 512)
    await new.destroy("i-1")
