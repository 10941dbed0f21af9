"""The storage service's side effects: what `decide` may ask for, and the handlers that do it.

Each handler drives the pool through a `StorageDriver` and returns the events recording the
outcome; a failed operation (pool full, Ceph unreachable, a missing parent) is a
`VolumeFailed`, not an exception. Every operation is safe to repeat, since RBD names derive
from Virga ids and the driver treats "already done" as done: a batch re-run after a crash
finds its work done and only writes the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from virga_events.catalog.storage import (
    VolumeCreated,
    VolumeDeleted,
    VolumeExtended,
    VolumeFailed,
    VolumeFlattened,
    VolumeSnapshotCreated,
)
from virga_runtime.service import EffectHandler, Emit
from virga_storage.driver import BASE_SNAPSHOT, HasChildren, StorageDriver, StorageError

log = structlog.get_logger(__name__)

GiB = 1 << 30
VOLUME_PREFIX = "volume-"


def volume_image(volume_id: str) -> str:
    """The RBD image of a volume."""
    return f"{VOLUME_PREFIX}{volume_id}"


def image_image(image_id: str) -> str:
    """The RBD image of a Virga image (what instances boot from)."""
    return f"image-{image_id}"


def snapshot_name(snapshot_id: str) -> str:
    """The RBD snapshot of a volume snapshot."""
    return f"snapshot-{snapshot_id}"


@dataclass(frozen=True, slots=True)
class CloneSource:
    """The RBD snapshot a new volume is cloned from, and how the event names it."""

    rbd_image: str
    rbd_snapshot: str
    parent: str
    """``image:<id>`` or ``snapshot:<id>``."""

    @classmethod
    def of_image(cls, image_id: str) -> CloneSource:
        return cls(image_image(image_id), BASE_SNAPSHOT, f"image:{image_id}")

    @classmethod
    def of_snapshot(cls, volume_id: str, snapshot_id: str) -> CloneSource:
        return cls(volume_image(volume_id), snapshot_name(snapshot_id), f"snapshot:{snapshot_id}")


@dataclass(frozen=True, slots=True)
class CreateVolume:
    """Create a volume, empty or cloned (VolumeCreated, or VolumeFailed)."""

    volume_id: str
    tenant_id: str | None
    name: str
    size_gb: int
    source: CloneSource | None = None
    clone_depth: int = 0
    instance_id: str | None = None

    @property
    def key(self) -> str:
        return self.volume_id


@dataclass(frozen=True, slots=True)
class FlattenVolume:
    """Copy what a clone still reads from its parent and drop the link (VolumeFlattened)."""

    volume_id: str
    tenant_id: str | None
    reason: str

    @property
    def key(self) -> str:
        return self.volume_id


@dataclass(frozen=True, slots=True)
class ExtendVolume:
    """Grow a volume (VolumeExtended, or VolumeFailed)."""

    volume_id: str
    tenant_id: str | None
    size_gb: int

    @property
    def key(self) -> str:
        return self.volume_id


@dataclass(frozen=True, slots=True)
class SnapshotVolume:
    """Create and protect a snapshot of a volume (VolumeSnapshotCreated, or VolumeFailed)."""

    volume_id: str
    tenant_id: str | None
    snapshot_id: str
    name: str

    @property
    def key(self) -> str:
        return self.volume_id


@dataclass(frozen=True, slots=True)
class ChildVolume:
    """A live clone of the volume being deleted."""

    volume_id: str
    tenant_id: str | None


@dataclass(frozen=True, slots=True)
class DeleteVolume:
    """Remove a volume and its snapshots, flattening its clones first (VolumeDeleted)."""

    volume_id: str
    tenant_id: str | None
    children: tuple[ChildVolume, ...] = ()
    """Clones the log knows of; the cluster may name more, which are flattened too."""

    @property
    def key(self) -> str:
        return self.volume_id


def _failed(volume_id: str, tenant_id: str | None, operation: Any, error: Exception) -> Emit:
    log.warning("volume_operation_failed", volume_id=volume_id, operation=operation, reason=error)
    return Emit(VolumeFailed(operation=operation, reason=str(error)), volume_id, tenant_id)


class StorageEffects:
    """The effect handlers of the storage service, over its driver."""

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
        name, size = volume_image(effect.volume_id), effect.size_gb * GiB
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
            await self._driver.flatten(volume_image(effect.volume_id))
        except StorageError as error:
            return [_failed(effect.volume_id, effect.tenant_id, "flatten", error)]
        log.info("volume_flattened", volume_id=effect.volume_id, reason=effect.reason)
        flattened = VolumeFlattened(reason=effect.reason)
        return [Emit(flattened, effect.volume_id, effect.tenant_id)]

    async def extend(self, effect: ExtendVolume) -> Sequence[Emit]:
        try:
            await self._driver.resize(volume_image(effect.volume_id), effect.size_gb * GiB)
        except (StorageError, ValueError) as error:
            return [_failed(effect.volume_id, effect.tenant_id, "extend", error)]
        return [Emit(VolumeExtended(size_gb=effect.size_gb), effect.volume_id, effect.tenant_id)]

    async def snapshot(self, effect: SnapshotVolume) -> Sequence[Emit]:
        try:
            await self._driver.snapshot(
                volume_image(effect.volume_id), snapshot_name(effect.snapshot_id)
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
        name = volume_image(effect.volume_id)
        try:
            for child in effect.children:
                emits += await self._flatten_child(child.volume_id, child.tenant_id)
            try:
                await self._driver.remove(name)
            except HasChildren as error:
                # Clones the log did not know of yet (made in this same batch).
                for child_name in error.children:
                    child_id = child_name.removeprefix(VOLUME_PREFIX)
                    emits += await self._flatten_child(child_id, known.get(child_id))
                await self._driver.remove(name)
        except StorageError as error:
            return [*emits, _failed(effect.volume_id, effect.tenant_id, "delete", error)]
        log.info("volume_deleted", volume_id=effect.volume_id)
        return [*emits, Emit(VolumeDeleted(), effect.volume_id, effect.tenant_id)]

    async def _flatten_child(self, volume_id: str, tenant_id: str | None) -> list[Emit]:
        await self._driver.flatten(volume_image(volume_id))
        reason = "its parent volume was deleted"
        return [Emit(VolumeFlattened(reason=reason), volume_id, tenant_id)]
