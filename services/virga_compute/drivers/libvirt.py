"""`ComputeDriver` on libvirt-python, for QEMU/KVM hosts and libvirt's test hypervisor.

Threading: every libvirt call runs on one thread owned by the driver (a single-worker
executor), not on `asyncio.to_thread`'s shared pool. libvirt's API is thread-safe, but one
thread gives each host's operations a strict order (a stop issued before a destroy reaches
libvirt first), keeps libvirt's thread-local "last error" next to the call that set it, and
means a hung libvirtd blocks only this driver, never the loop's default executor that other
code needs. Waiting (for a graceful shutdown) happens on the event loop, not in that thread.

Ceph: with a `CephSecret`, each new connection first defines that libvirt secret (private,
persistent, usage `ceph`) and sets its value, so QEMU can open cephx-protected RBD disks that
name its UUID. Hypervisors without secrets (the test driver) skip it.

Connection: the driver holds one connection for its whole life. With `test:///default` this
is required, not just cheaper: every connection in a process shares one test hypervisor,
which libvirt resets to its initial state when the last connection closes. A connection that
breaks (libvirtd restarted) is dropped and reopened on the next call.

The helpers over domain handles (lookup, power, state, usage) are `libvirt_domains`; live
migration is `libvirt_migration`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt
import structlog

from virga_compute.ceph_access import CephSecret
from virga_compute.core.spec import DiskSpec, DomainInfo, DomainState, InstanceSpec
from virga_compute.drivers import domain_xml
from virga_compute.drivers.base import (
    ConsoleStream,
    DiskConflict,
    DriverCapabilities,
    DriverError,
    GuestEvent,
    HostCapacity,
    HypervisorUnavailable,
    InstanceNotFound,
    OperationNotSupported,
    UsageSample,
)
from virga_compute.drivers.config_drive import remove_drive
from virga_compute.drivers.console_log import remove_log
from virga_compute.drivers.domain_xml import DomainSettings
from virga_compute.drivers.libvirt_console import LibvirtConsole
from virga_compute.drivers.libvirt_domains import (
    UNDEFINE_FLAGS,
    current_xml,
    define_and_start,
    domain_info,
    domain_state,
    error_code,
    lookup,
    managed_id,
    power_off,
    power_on,
    require,
    usage_sample,
)
from virga_compute.drivers.libvirt_events import lifecycle_events
from virga_compute.drivers.libvirt_migration import LibvirtMigrations
from virga_compute.drivers.libvirt_resize import LibvirtResizing

T = TypeVar("T")
_log = structlog.get_logger(__name__)

# Errors that say the connection itself is gone, whatever the operation was.
_CONNECTION_CODES = frozenset(
    {libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC}
)
_TRANSPORT_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})
_LIVE_AND_CONFIG = libvirt.VIR_DOMAIN_AFFECT_LIVE | libvirt.VIR_DOMAIN_AFFECT_CONFIG


def _ignore_error(_context: object, _error: object) -> None:
    """Replaces libvirt's process-wide default handler, which prints every error to stderr,
    even the expected 'domain not found' of an idempotent destroy; each error still reaches
    us as an exception."""


class LibvirtDriver(LibvirtMigrations, LibvirtResizing):
    """`ComputeDriver` over one libvirt connection (see the module docstring)."""

    def __init__(
        self,
        uri: str,
        *,
        instances_path: str,
        settings: DomainSettings | None = None,
        grace_period: float = 60.0,
        poll_interval: float = 0.5,
        ceph_secret: CephSecret | None = None,
    ) -> None:
        self._uri = uri
        self._instances_path = instances_path
        settings = settings if settings is not None else DomainSettings()
        if settings.config_drive_dir is None:
            drives = os.path.join(instances_path, "config-drives")
            settings = dataclasses.replace(settings, config_drive_dir=drives)
        self._settings = settings
        self._grace_period = grace_period
        self._poll_interval = poll_interval
        self._ceph_secret = ceph_secret
        self._conn: Any | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvirt")

    async def __aenter__(self) -> LibvirtDriver:
        await self.connect()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- plumbing: everything below `_call` runs on the libvirt thread --------------------

    async def _call(self, operation: Callable[[Any], T], instance_id: str | None = None) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._invoke, operation, instance_id)

    def _invoke(self, operation: Callable[[Any], T], instance_id: str | None) -> T:
        if self._conn is None:
            libvirt.registerErrorHandler(_ignore_error, None)
            try:
                conn = libvirt.open(self._uri)
            except libvirt.libvirtError as exc:
                raise HypervisorUnavailable(f"cannot connect to {self._uri}: {exc}") from exc
            try:
                self._define_secret(conn)
            except libvirt.libvirtError as exc:
                conn.close()
                raise DriverError(f"cannot define the Ceph secret on {self._uri}: {exc}") from exc
            self._conn = conn
        try:
            return operation(self._conn)
        except libvirt.libvirtError as exc:
            raise self._translate(exc, instance_id) from exc

    def _define_secret(self, conn: Any) -> None:
        secret = self._ceph_secret
        if secret is None:
            return
        definition = domain_xml.ceph_secret_xml(secret.uuid, secret.user)
        try:
            handle = conn.secretDefineXML(definition, 0)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_SUPPORT:
                return  # no secrets here (test driver), and no QEMU to open disks either
            raise
        handle.setValue(secret.key, 0)

    def _translate(self, exc: libvirt.libvirtError, instance_id: str | None) -> DriverError:
        code = error_code(exc)
        if code == libvirt.VIR_ERR_NO_DOMAIN and instance_id is not None:
            return InstanceNotFound(instance_id)
        if code == libvirt.VIR_ERR_NO_SUPPORT:
            return OperationNotSupported(f"{self._uri}: {exc}")
        alive = self._conn is not None and self._alive()
        if code in _CONNECTION_CODES or exc.get_error_domain() in _TRANSPORT_DOMAINS or not alive:
            self._drop_connection()
            return HypervisorUnavailable(f"{self._uri}: {exc}")
        return DriverError(f"libvirt error {code} on {self._uri}: {exc}")

    def _alive(self) -> bool:
        try:
            return bool(self._conn.isAlive())  # type: ignore[union-attr]
        except libvirt.libvirtError:
            return False

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except libvirt.libvirtError as exc:  # already broken: closing is best effort
                _log.warning("libvirt_close_failed", uri=self._uri, error=str(exc))

    # -- lifecycle ------------------------------------------------------------------------

    async def connect(self) -> None:
        await self._call(lambda _conn: None)

    async def close(self) -> None:
        """Close the connection and stop the libvirt thread; the driver cannot be reused."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._drop_connection)
        self._executor.shutdown(wait=False)

    async def open_console(self, instance_id: str) -> ConsoleStream:  # a connection of its own
        return await LibvirtConsole.open(self._uri, instance_id)

    def guest_events(self) -> AsyncIterator[GuestEvent]:  # on a connection of their own
        return lifecycle_events(self._uri)

    # -- queries --------------------------------------------------------------------------

    async def capabilities(self) -> DriverCapabilities:
        # QEMU hot-plugs virtio disks; the test driver has no device (de)attach at all.
        hypervisor = await self._call(lambda conn: str(conn.getType()))
        return DriverCapabilities(live_disk_attach=hypervisor.upper() == "QEMU")

    async def capacity(self) -> HostCapacity:
        def query(conn: Any) -> HostCapacity:
            info = conn.getInfo()  # [model, memory MiB, cpus, MHz, nodes, sockets, cores, threads]
            try:
                fs = os.statvfs(self._instances_path)
            except OSError as exc:
                raise DriverError(f"cannot stat {self._instances_path}: {exc}") from exc
            disk_gb = fs.f_blocks * fs.f_frsize // 2**30
            return HostCapacity(vcpus=int(info[2]), ram_mb=int(info[1]), disk_gb=disk_gb)

        return await self._call(query)

    async def list_instances(self) -> list[DomainInfo]:
        def query(conn: Any) -> list[DomainInfo]:
            found = []
            for dom in conn.listAllDomains(0):
                try:
                    instance_id = managed_id(dom)
                    if instance_id is not None:
                        found.append(domain_info(instance_id, dom))
                except libvirt.libvirtError as exc:
                    if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:  # undefined while listing
                        raise
            return sorted(found, key=lambda info: info.instance_id)

        return await self._call(query)

    async def get_info(self, instance_id: str) -> DomainInfo:
        def query(conn: Any) -> DomainInfo:
            dom = lookup(conn, instance_id)
            state = DomainState.MISSING if dom is None else domain_state(dom)
            return DomainInfo(instance_id, state)

        return await self._call(query, instance_id)

    async def attached_disks(self, instance_id: str) -> list[str]:
        def query(conn: Any) -> list[str]:
            return sorted(domain_xml.parse_disks(current_xml(require(conn, instance_id))))

        return await self._call(query, instance_id)

    async def usage(self) -> list[UsageSample]:
        def query(conn: Any) -> list[UsageSample]:
            samples = []
            for dom in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE):
                try:
                    instance_id = managed_id(dom)
                    if instance_id is not None:
                        samples.append(usage_sample(instance_id, dom))
                except libvirt.libvirtError as exc:
                    # It stopped or vanished between listing and sampling: no sample is due.
                    gone = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID)
                    if error_code(exc) not in gone:
                        raise
            return sorted(samples, key=lambda sample: sample.instance_id)

        return await self._call(query)

    # -- power ----------------------------------------------------------------------------

    async def spawn(self, spec: InstanceSpec, *, start: bool = True) -> None:
        definition = domain_xml.build_domain_xml(spec, self._settings)
        drive = domain_xml.config_drive_path(self._settings, spec.instance_id)
        await self._call(
            lambda conn: define_and_start(conn, spec, definition, drive, start), spec.instance_id
        )

    async def start(self, instance_id: str) -> None:
        await self._call(lambda conn: power_on(require(conn, instance_id)), instance_id)

    async def stop(self, instance_id: str, *, grace_period: float | None = None) -> None:
        grace = self._grace_period if grace_period is None else grace_period

        def request_shutdown(conn: Any) -> bool:
            """Ask the guest to power off; False if there is nothing to wait for."""
            dom = require(conn, instance_id)
            # A paused guest cannot answer ACPI, and no grace means no asking.
            if domain_state(dom) is DomainState.PAUSED or grace <= 0:
                power_off(dom)
                return False
            if not dom.isActive():
                return False
            try:
                dom.shutdown()
            except libvirt.libvirtError:
                if dom.isActive():
                    raise
                return False
            return True

        if not await self._call(request_shutdown, instance_id):
            return
        deadline = asyncio.get_running_loop().time() + grace
        while asyncio.get_running_loop().time() < deadline:
            info = await self.get_info(instance_id)
            if info.state in (DomainState.SHUTOFF, DomainState.CRASHED, DomainState.MISSING):
                return
            await asyncio.sleep(self._poll_interval)
        _log.warning("graceful_shutdown_timed_out", instance_id=instance_id, timeout=grace)
        await self._call(lambda conn: power_off(require(conn, instance_id)), instance_id)

    async def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        def operation(conn: Any) -> None:
            dom = require(conn, instance_id)
            if not dom.isActive():
                power_on(dom)
            elif hard:
                # Off and on again (not virDomainReset): QEMU restarts from the definition.
                power_off(dom)
                dom.create()
            else:
                dom.reboot(0)

        await self._call(operation, instance_id)

    async def destroy(self, instance_id: str) -> None:
        drive = domain_xml.config_drive_path(self._settings, instance_id)
        log = domain_xml.console_log_path(self._settings, instance_id)

        def operation(conn: Any) -> None:
            dom = lookup(conn, instance_id)
            if dom is not None:
                power_off(dom)
                try:
                    dom.undefineFlags(UNDEFINE_FLAGS)
                except libvirt.libvirtError as exc:
                    if error_code(exc) != libvirt.VIR_ERR_NO_DOMAIN:  # gone with power-off
                        raise
            if drive is not None:  # also one a crash left between writing and defining
                remove_drive(drive)
            if log is not None:
                remove_log(log)

        await self._call(operation, instance_id)

    # -- disks ----------------------------------------------------------------------------

    async def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        def operation(conn: Any) -> None:
            dom = require(conn, instance_id)
            current = current_xml(dom)
            present = domain_xml.parse_disks(current).get(disk.target_dev)
            if present == domain_xml.source_key(disk.source):
                return
            if present is not None:
                raise DiskConflict(f"{instance_id}: {disk.target_dev} already holds {present}")
            if dom.isActive():
                dom.attachDeviceFlags(domain_xml.disk_xml(disk), _LIVE_AND_CONFIG)
            else:
                # Redefining works on every hypervisor, the test driver included, and is
                # what virDomainAttachDeviceFlags(CONFIG) does for an inactive domain.
                conn.defineXML(domain_xml.with_disk(current, disk))

        await self._call(operation, instance_id)

    async def resize_disk(self, instance_id: str, target_dev: str, size_bytes: int) -> None:
        def operation(conn: Any) -> None:
            dom = require(conn, instance_id)
            if not dom.isActive():
                return
            if str(conn.getType()).upper() != "QEMU":  # as `capabilities` declares
                raise OperationNotSupported(f"{self._uri}: no live disk resize")
            if target_dev not in domain_xml.parse_disks(current_xml(dom)):
                raise DriverError(f"{instance_id}: no disk at {target_dev}")
            # QEMU resizes the RBD image itself: a smaller size (a stale, re-decided growth)
            # would cut the volume. Only ever grow.
            if size_bytes > int(dom.blockInfo(target_dev)[0]):
                dom.blockResize(target_dev, size_bytes, libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)

        await self._call(operation, instance_id)

    async def detach_disk(self, instance_id: str, target_dev: str) -> None:
        def operation(conn: Any) -> None:
            dom = require(conn, instance_id)
            current = current_xml(dom)
            element = domain_xml.find_disk_xml(current, target_dev)
            if element is None:
                return
            if dom.isActive():
                # QEMU completes a live detach only once the guest lets go of the device; a
                # request the guest missed (still booting) is sent again by a repeated call,
                # when the persistent definition has already lost the disk.
                persistent = str(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
                flags = libvirt.VIR_DOMAIN_AFFECT_LIVE
                if target_dev in domain_xml.parse_disks(persistent):
                    flags |= libvirt.VIR_DOMAIN_AFFECT_CONFIG
                dom.detachDeviceFlags(element, flags)
            else:
                conn.defineXML(domain_xml.without_disk(current, target_dev))

        await self._call(operation, instance_id)
