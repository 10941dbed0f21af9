"""The volume effects' handlers: create (empty or cloned), flatten, extend, snapshot, delete.

Each handler drives the pool through a `StorageDriver` and returns the events recording the
outcome; a failed operation (pool full, Ceph unreachable, a missing parent) is a
`VolumeFailed`, not an exception. Every operation is safe to repeat, since RBD names derive
from Virga ids and the driver treats "already done" as done: a batch re-run after a crash
finds its work done and only writes the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_events.catalog.storage import (
    RBD_VOLUME_PREFIX,
    BootVolumeGrowFailed,
    BootVolumeGrown,
    VolumeCreated,
    VolumeDeleted,
    VolumeExtended,
    VolumeFailed,
    VolumeFlattened,
    VolumeSnapshotCreated,
    rbd_volume_name,
)
from virga_runtime.service import EffectHandler, Emit
from virga_storage.drivers.base import HasChildren, StorageDriver, StorageError
from virga_storage.effects.intents import (
    CreateVolume,
    DeleteVolume,
    ExtendVolume,
    FlattenVolume,
    SnapshotVolume,
    snapshot_name,
)

log = structlog.get_logger(__name__)

GiB = 1 << 30


def _failed(volume_id: str, tenant_id: str | None, operation: Any, error: Exception) -> Emit:
    log.warning("volume_operation_failed", volume_id=volume_id, operation=operation, reason=error)
    return Emit(VolumeFailed(operation=operation, reason=str(error)), volume_id, tenant_id)


class VolumeEffects:
    """The volume effect handlers of the storage service, over its driver."""

    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {
            CreateVolume: self.create,
            FlattenVolume: self.flatten,
            ExtendVolume: self.extend,
            SnapshotVolume: self.snapshot,
            DeleteVolume: self.delete,
        }

    async def create(self, effect: CreateVolume) -> Sequence[Emit]:
        name, size = rbd_volume_name(effect.volume_id), effect.size_gb * GiB
        source = effect.source
        try:
            if source is None:
                await self._driver.create_volume(name, size)
            else:
                await self._driver.clone(source.rbd_image, source.rbd_snapshot, name, size)
        except (StorageError, ValueError) as error:
            return [_failed(effect.volume_id, effect.tenant_id, "create", error)]
        log.info("volume_created", volume_id=effect.volume_id, parent=source and source.parent)
        created = VolumeCreated(
            name=effect.name,
            size_gb=effect.size_gb,
            parent=None if source is None else source.parent,
            clone_depth=effect.clone_depth,
            instance_id=effect.instance_id,
        )
        return [Emit(created, effect.volume_id, effect.tenant_id)]

    async def flatten(self, effect: FlattenVolume) -> Sequence[Emit]:
        try:
            await self._driver.flatten(rbd_volume_name(effect.volume_id))
        except StorageError as error:
            return [_failed(effect.volume_id, effect.tenant_id, "flatten", error)]
        log.info("volume_flattened", volume_id=effect.volume_id, reason=effect.reason)
        flattened = VolumeFlattened(reason=effect.reason)
        return [Emit(flattened, effect.volume_id, effect.tenant_id)]

    async def extend(self, effect: ExtendVolume) -> Sequence[Emit]:
        resize, tenant_id = effect.resize, effect.tenant_id
        try:
            await self._driver.resize(rbd_volume_name(effect.volume_id), effect.size_gb * GiB)
        except (StorageError, ValueError) as error:
            failed = [_failed(effect.volume_id, tenant_id, "extend", error)]
            if resize is not None:
                answer = BootVolumeGrowFailed(
                    flow_id=resize.flow_id, step=resize.step, reason=str(error)
                )
                failed.append(Emit(answer, resize.instance_id, tenant_id))
            return failed
        grown = [Emit(VolumeExtended(size_gb=effect.size_gb), effect.volume_id, tenant_id)]
        if resize is not None:
            done = BootVolumeGrown(flow_id=resize.flow_id, step=resize.step, size_gb=effect.size_gb)
            grown.append(Emit(done, resize.instance_id, tenant_id))
        return grown

    async def snapshot(self, effect: SnapshotVolume) -> Sequence[Emit]:
        try:
            await self._driver.snapshot(
                rbd_volume_name(effect.volume_id), snapshot_name(effect.snapshot_id)
            )
        except (StorageError, ValueError) as error:
            return [_failed(effect.volume_id, effect.tenant_id, "snapshot", error)]
        created = VolumeSnapshotCreated(snapshot_id=effect.snapshot_id, name=effect.name)
        return [Emit(created, effect.volume_id, effect.tenant_id)]

    async def delete(self, effect: DeleteVolume) -> Sequence[Emit]:
        """Clones are flattened first (each a VolumeFlattened), so a deletion never waits on
        another tenant's volume; then the volume goes with all its snapshots."""
        emits: list[Emit] = []
        known = {child.volume_id: child.tenant_id for child in effect.children}
        name = rbd_volume_name(effect.volume_id)
        try:
            for child in effect.children:
                emits += await self._flatten_child(child.volume_id, child.tenant_id)
            try:
                await self._driver.remove(name)
            except HasChildren as error:
                # Clones the log did not know of yet (made in this same batch).
                for child_name in error.children:
                    child_id = child_name.removeprefix(RBD_VOLUME_PREFIX)
                    emits += await self._flatten_child(child_id, known.get(child_id))
                await self._driver.remove(name)
        except StorageError as error:
            return [*emits, _failed(effect.volume_id, effect.tenant_id, "delete", error)]
        log.info("volume_deleted", volume_id=effect.volume_id)
        return [*emits, Emit(VolumeDeleted(), effect.volume_id, effect.tenant_id)]

    async def _flatten_child(self, volume_id: str, tenant_id: str | None) -> list[Emit]:
        await self._driver.flatten(rbd_volume_name(volume_id))
        reason = "its parent volume was deleted"
        return [Emit(VolumeFlattened(reason=reason), volume_id, tenant_id)]
