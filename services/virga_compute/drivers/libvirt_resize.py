"""A stopped libvirt domain redefined with other vCPUs and memory: a cold resize's part on
its host (`LibvirtDriver.redefine`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any, TypeVar

import libvirt

from virga_compute.drivers.base import DriverError
from virga_compute.drivers.libvirt_domains import require

T = TypeVar("T")


def with_flavor(definition: str, vcpus: int, ram_mb: int) -> str:
    """`definition` (a domain's inactive XML) with `vcpus` vCPUs and `ram_mb` MiB of memory;
    everything else (disks, NICs, metadata, UUID) as it was."""
    root = ET.fromstring(definition)
    for tag in ("memory", "currentMemory"):
        node = root.find(tag)
        if node is None and tag == "currentMemory":
            continue
        if node is None:
            node = ET.SubElement(root, tag)
        node.text, node.attrib = str(ram_mb), {"unit": "MiB"}
    vcpu = root.find("vcpu")
    if vcpu is None:
        vcpu = ET.SubElement(root, "vcpu")
    vcpu.text = str(vcpus)
    vcpu.attrib.pop("current", None)  # a hot-plug ceiling below the new count is meaningless
    return ET.tostring(root, encoding="unicode")


def redefine_stopped(conn: Any, instance_id: str, vcpus: int, ram_mb: int) -> None:
    """Redefine the instance's domain with the new size. Only a stopped domain: a running
    guest would keep its old size until restarted, so it is refused rather than half done.
    A failure leaves the old definition in place (libvirt's define is all or nothing)."""
    dom = require(conn, instance_id)
    if dom.isActive():
        raise DriverError(f"instance {instance_id} runs: stop it before it is resized")
    definition = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    conn.defineXML(with_flavor(definition, vcpus, ram_mb))


class LibvirtResizing:
    """The resize method of `LibvirtDriver` (a mixin over its connection plumbing)."""

    async def _call(self, operation: Callable[[Any], T], instance_id: str | None = None) -> T:
        raise NotImplementedError  # LibvirtDriver's

    async def redefine(self, instance_id: str, *, vcpus: int, ram_mb: int) -> None:
        await self._call(
            lambda conn: redefine_stopped(conn, instance_id, vcpus, ram_mb), instance_id
        )
