"""Live migration for `LibvirtDriver`: `virDomainMigrateToURI3`, watched and bounded.

The migration is peer-to-peer (`VIR_MIGRATE_PEER2PEER`): this host's libvirtd connects to the
destination's itself (`destination_uri`), so the agent needs no connection there, and QEMU
sends the memory straight to `migration_address`. The definition moves with the guest
(`PERSIST_DEST`, `UNDEFINE_SOURCE`): the instance is defined where it runs, nowhere else.

`migrateToURI3` blocks for the whole migration, so it runs on a thread and a connection of
its own, never on the driver's libvirt thread: that thread stays free to sample the job
(`jobStats`) and, past `MigrationOptions.timeout`, to abort it (`abortJob`); libvirt then
resumes the guest here. Disks must be shared: Virga's are on RBD, which libvirt knows to be
safe without `--unsafe`.

Each host opens RBD volumes as its own cephx user (so one host can be cut off alone): when
the destination's differs (`MigrationOptions.destination_ceph`), the definition sent along
(`DEST_XML`, `PERSIST_XML`) names the destination's user and secret in every RBD disk, as the
destination's QEMU opens the disks when the guest arrives; this host's secret is not there.
"""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import libvirt
import structlog

from virga_compute.drivers.base import (
    DriverError,
    HypervisorUnavailable,
    InstanceNotFound,
    MigrationAborted,
    MigrationFailed,
    MigrationOptions,
    MigrationProgress,
    MigrationResult,
)
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.libvirt_domains import error_code, require

T = TypeVar("T")
_log = structlog.get_logger(__name__)

FLAGS = (
    libvirt.VIR_MIGRATE_LIVE
    | libvirt.VIR_MIGRATE_PEER2PEER
    | libvirt.VIR_MIGRATE_PERSIST_DEST
    | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
)


def migration_call(
    destination_uri: str, migration_address: str, options: MigrationOptions
) -> tuple[dict[str, Any], int]:
    """The parameters and flags of `migrateToURI3` for these options."""
    address = migration_address if "://" in migration_address else f"tcp://{migration_address}"
    params: dict[str, Any] = {libvirt.VIR_MIGRATE_PARAM_URI: address}
    flags = FLAGS
    if options.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if options.compressed:
        flags |= libvirt.VIR_MIGRATE_COMPRESSED
        params[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "xbzrle"
    if options.bandwidth_mib is not None:
        params[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = options.bandwidth_mib
    return params, flags


def with_ceph_identity(domain_xml: str, user: str, secret_uuid: str) -> str:
    """The domain's definition with every RBD disk opened as cephx `user`, whose key is the
    libvirt secret `secret_uuid` (the destination's, in a live migration)."""
    root = ET.fromstring(domain_xml)
    for disk in root.iter("disk"):
        source = disk.find("source")
        if source is None or source.get("protocol") != "rbd":
            continue
        for auth in (*disk.findall("auth"), *source.findall("auth")):
            auth.set("username", user)
            for secret in auth.findall("secret"):
                secret.attrib.pop("usage", None)
                secret.set("uuid", secret_uuid)
    return ET.tostring(root, encoding="unicode")


def progress_from_stats(instance_id: str, stats: dict[str, Any]) -> MigrationProgress | None:
    """A sample from `virDomainGetJobStats`; None when no job runs."""
    if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
        return None
    return MigrationProgress(
        instance_id=instance_id,
        elapsed_ms=int(stats.get("time_elapsed", 0)),
        data_total=int(stats.get("data_total", 0)),
        data_processed=int(stats.get("data_processed", 0)),
        data_remaining=int(stats.get("data_remaining", 0)),
        dirty_rate=int(stats.get("memory_dirty_rate", 0)),
        iteration=int(stats.get("memory_iteration", 0)),
    )


class LibvirtMigrations:
    """The migration methods of `LibvirtDriver` (a mixin over its connection plumbing)."""

    _uri: str

    async def _call(self, operation: Callable[[Any], T], instance_id: str | None = None) -> T:
        raise NotImplementedError  # LibvirtDriver's

    async def migration_progress(self, instance_id: str) -> MigrationProgress | None:
        def query(conn: Any) -> MigrationProgress | None:
            return progress_from_stats(instance_id, require(conn, instance_id).jobStats(0))

        return await self._call(query, instance_id)

    async def migrate_live(
        self,
        instance_id: str,
        destination_uri: str,
        migration_address: str,
        *,
        options: MigrationOptions | None = None,
        on_progress: Callable[[MigrationProgress], None] | None = None,
    ) -> MigrationResult:
        options = options if options is not None else MigrationOptions()
        log = _log.bind(instance_id=instance_id, destination=destination_uri)

        def check(conn: Any) -> None:
            if not require(conn, instance_id).isActive():
                raise MigrationFailed(f"{instance_id} is not running: nothing to migrate live")

        await self._call(check, instance_id)
        params, flags = migration_call(destination_uri, migration_address, options)
        identity = options.destination_ceph
        started = time.monotonic()
        log.info("live_migration_started", address=params[libvirt.VIR_MIGRATE_PARAM_URI])
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="libvirt-migrate")
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(
            executor, self._migrate, instance_id, destination_uri, params, flags, identity
        )
        last: MigrationProgress | None = None
        aborted = False
        try:
            while not running.done():
                await asyncio.wait({running}, timeout=options.poll_interval)
                if running.done():
                    break
                last = await self._sample(instance_id) or last
                if last is not None and on_progress is not None:
                    on_progress(last)
                if not aborted and time.monotonic() - started > options.timeout:
                    log.warning("live_migration_timed_out", timeout=options.timeout)
                    aborted = await self._abort(instance_id)
            await running
        except asyncio.CancelledError:
            # The caller gave up: so does the hypervisor, rather than finish unobserved.
            log.warning("live_migration_cancelled")
            if not running.done():
                await self._abort(instance_id)
            raise
        except MigrationFailed as exc:
            seconds = time.monotonic() - started
            log.warning("live_migration_failed", error=str(exc), seconds=round(seconds, 3))
            if aborted:
                message = f"{instance_id}: not done within {options.timeout} s, aborted"
                raise MigrationAborted(message) from exc
            raise
        finally:
            executor.shutdown(wait=False)
        seconds = time.monotonic() - started
        log.info("live_migration_completed", seconds=round(seconds, 3))
        return MigrationResult(seconds=seconds, last_progress=last)

    def _migrate(
        self,
        instance_id: str,
        destination_uri: str,
        params: dict[str, Any],
        flags: int,
        identity: tuple[str, str] | None,
    ) -> None:
        """Runs on the migration's own thread, over a connection of its own."""
        try:
            conn = libvirt.open(self._uri)
        except libvirt.libvirtError as exc:
            raise HypervisorUnavailable(f"cannot connect to {self._uri}: {exc}") from exc
        try:
            dom = conn.lookupByName(domain_name(instance_id))
            if identity is not None:
                params = {**params, **_definitions(dom, *identity)}
            dom.migrateToURI3(destination_uri, params, flags)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                raise InstanceNotFound(instance_id) from exc
            raise MigrationFailed(f"{instance_id} to {destination_uri}: {exc}") from exc
        finally:
            conn.close()

    async def runs_at(self, destination_uri: str, instance_id: str) -> bool:
        def ask() -> bool:
            try:
                conn = libvirt.openReadOnly(destination_uri)
            except libvirt.libvirtError as exc:
                raise HypervisorUnavailable(f"cannot connect to {destination_uri}: {exc}") from exc
            try:
                return bool(conn.lookupByName(domain_name(instance_id)).isActive())
            except libvirt.libvirtError as exc:
                if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                    return False
                raise HypervisorUnavailable(f"{destination_uri}: {exc}") from exc
            finally:
                conn.close()

        # A connection of its own, on a thread: the driver's libvirt thread is this host's.
        return await asyncio.get_running_loop().run_in_executor(None, ask)

    async def _sample(self, instance_id: str) -> MigrationProgress | None:
        try:
            return await self.migration_progress(instance_id)
        except DriverError:  # gone from here in between: the migration is just ending
            return None

    async def _abort(self, instance_id: str) -> bool:
        def abort(conn: Any) -> None:
            require(conn, instance_id).abortJob()

        try:
            await self._call(abort, instance_id)
        except DriverError as exc:  # it completed or failed in between: its result says
            _log.warning("live_migration_abort_failed", instance_id=instance_id, error=str(exc))
            return False
        return True


def _definitions(dom: Any, user: str, secret_uuid: str) -> dict[str, str]:
    """`DEST_XML` and `PERSIST_XML` of a migration whose destination opens the disks as
    `user` with the secret `secret_uuid`."""
    live = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE)
    persistent = dom.XMLDesc(libvirt.VIR_DOMAIN_XML_MIGRATABLE | libvirt.VIR_DOMAIN_XML_INACTIVE)
    return {
        libvirt.VIR_MIGRATE_PARAM_DEST_XML: with_ceph_identity(live, user, secret_uuid),
        libvirt.VIR_MIGRATE_PARAM_PERSIST_XML: with_ceph_identity(persistent, user, secret_uuid),
    }
