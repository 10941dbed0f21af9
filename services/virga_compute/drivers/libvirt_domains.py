"""Helpers over libvirt domain handles for the libvirt driver: finding the Virga-managed
domain of an instance, powering it on and off, reading its state and its usage counters.

Everything here runs on the driver's libvirt thread (`LibvirtDriver._call`) and raises
`libvirt.libvirtError`, which the driver translates into its `DriverError`s.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import libvirt

from virga_compute.core.spec import DomainInfo, DomainState, InstanceSpec
from virga_compute.drivers import domain_xml
from virga_compute.drivers.base import DriverError, InstanceNotFound, UsageSample
from virga_compute.drivers.config_drive import remove_drive, write_drive
from virga_events.catalog.compute import StopCause

T = TypeVar("T")

# Not VIR_DOMAIN_UNDEFINE_NVRAM: Virga guests boot without UEFI, and the test driver
# rejects the flag.
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: DomainState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: DomainState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: DomainState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: DomainState.SHUTTING_DOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: DomainState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: DomainState.CRASHED,
}


def error_code(exc: libvirt.libvirtError) -> int:
    code = exc.get_error_code()  # None for an error raised without a libvirt error behind it
    return -1 if code is None else int(code)


def domain_state(dom: Any) -> DomainState:
    state, reason = dom.state(0)
    if state == libvirt.VIR_DOMAIN_SHUTOFF and reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
        return DomainState.CRASHED
    return _STATES.get(state, DomainState.UNKNOWN)


_SHUTOFF_CAUSES: dict[int, StopCause] = {
    libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN: "shutdown",
    libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED: "destroyed",
    libvirt.VIR_DOMAIN_SHUTOFF_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_FAILED: "crashed",
    libvirt.VIR_DOMAIN_SHUTOFF_DAEMON: "crashed",  # gone while libvirtd was away
}


def domain_info(instance_id: str, dom: Any) -> DomainInfo:
    """State of a domain, with why it is off when libvirt says (its shutoff reason)."""
    state, reason = dom.state(0)
    cause = _SHUTOFF_CAUSES.get(reason) if state == libvirt.VIR_DOMAIN_SHUTOFF else None
    return DomainInfo(instance_id, domain_state(dom), cause)


def managed_id(dom: Any) -> str | None:
    """The instance id of a Virga-managed domain; None for any other domain.

    A domain counts as Virga's only if its name *and* its metadata say so, so a hand-made
    domain that happens to be called virga-something is never touched.
    """
    claimed = domain_xml.instance_id_from_name(str(dom.name()))
    if claimed is None:
        return None
    try:
        metadata = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, domain_xml.METADATA_NS, 0)
    except libvirt.libvirtError as exc:
        if error_code(exc) in (libvirt.VIR_ERR_NO_DOMAIN_METADATA, libvirt.VIR_ERR_NO_DOMAIN):
            return None
        raise
    return claimed if domain_xml.instance_id_from_metadata(str(metadata)) == claimed else None


def find_domain(conn: Any, name: str) -> Any | None:
    """The domain called `name`, whoever manages it, or None."""
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def lookup(conn: Any, instance_id: str) -> Any | None:
    """The Virga-managed domain of an instance, or None."""
    dom = find_domain(conn, domain_xml.domain_name(instance_id))
    return dom if dom is not None and managed_id(dom) == instance_id else None


def require(conn: Any, instance_id: str) -> Any:
    dom = lookup(conn, instance_id)
    if dom is None:
        raise InstanceNotFound(instance_id)
    return dom


def current_xml(dom: Any) -> str:
    """What the guest sees if it runs, else what it is defined as."""
    flags = 0 if dom.isActive() else libvirt.VIR_DOMAIN_XML_INACTIVE
    return str(dom.XMLDesc(flags))


def power_on(dom: Any) -> None:
    if dom.state(0)[0] == libvirt.VIR_DOMAIN_PAUSED:
        dom.resume()
        return
    if dom.isActive():
        return
    try:
        dom.create()
    except libvirt.libvirtError:
        if not dom.isActive():  # lost a race with another start: that is success
            raise


def power_off(dom: Any) -> None:
    try:
        dom.destroy()
    except libvirt.libvirtError:
        if dom.isActive():  # "not running" means it got there on its own
            raise


def _unless_unsupported(call: Callable[[], T], default: T) -> T:
    """`call()`, or `default` where this hypervisor does not implement the call."""
    try:
        return call()
    except libvirt.libvirtError as exc:
        if error_code(exc) == libvirt.VIR_ERR_NO_SUPPORT:
            return default
        raise


def usage_sample(instance_id: str, dom: Any) -> UsageSample:
    info = dom.info()  # [state, max KiB, current KiB, vcpus, cpu time ns]
    # getCPUStats is the precise counter; info()'s cpu time is the same figure where
    # a hypervisor lacks it.
    cpu_time = _unless_unsupported(lambda: int(dom.getCPUStats(True)[0]["cpu_time"]), None)
    live = str(dom.XMLDesc(0))
    read = written = received = sent = 0
    for target in domain_xml.parse_disks(live):
        block = _unless_unsupported(partial(dom.blockStats, target), (0, 0, 0, 0, 0))
        read, written = read + int(block[1]), written + int(block[3])
    for tap in domain_xml.interface_targets(live):
        # libvirt already swaps the tap's counters into the guest's point of view.
        net = _unless_unsupported(partial(dom.interfaceStats, tap), (0,) * 8)
        received, sent = received + int(net[0]), sent + int(net[4])
    return UsageSample(
        instance_id=instance_id,
        cpu_time_ns=cpu_time if cpu_time is not None else int(info[4]),
        memory_kb=int(info[2]),
        disk_read_bytes=read,
        disk_write_bytes=written,
        net_rx_bytes=received,
        net_tx_bytes=sent,
    )


def define_and_start(
    conn: Any, spec: InstanceSpec, definition: str, drive: str | None, start: bool = True
) -> None:
    """Define the instance's domain (`definition`) and start it (unless not `start`), with its
    config drive image at `drive` written first; a domain an earlier attempt defined is
    started as it is.

    On failure what this call made is removed again, the image included.
    """
    name = domain_xml.domain_name(spec.instance_id)
    existing = find_domain(conn, name)
    if existing is not None:
        if managed_id(existing) != spec.instance_id:
            raise DriverError(f"domain {name!r} exists but is not managed by Virga")
        write_drive(spec, drive, rewrite=False)  # its CD-ROM must be there for it to start
        if start:
            power_on(existing)
        return
    write_drive(spec, drive)  # before the definition that names it
    try:
        dom = conn.defineXML(definition)
        try:
            if start:
                dom.create()
        except BaseException as exc:
            try:
                power_off(dom)
                dom.undefineFlags(UNDEFINE_FLAGS)
            except libvirt.libvirtError as cleanup:
                exc.add_note(f"cleanup of the partial domain {name!r} failed: {cleanup}")
            raise
    except BaseException:
        if spec.config_drive is not None and drive is not None:
            remove_drive(drive)
        raise
