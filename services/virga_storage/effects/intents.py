"""What the storage service's decisions ask for: the effect dataclasses (pure data), for
volumes, images and volume snapshots, and the RBD names of what they touch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from virga_events.catalog.storage import (
    VolumeSnapshotDeletionFailed,
    rbd_image_name,
    rbd_volume_name,
)
from virga_runtime.service import Emit
from virga_storage.drivers.base import BASE_SNAPSHOT


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
        return cls(rbd_image_name(image_id), BASE_SNAPSHOT, f"image:{image_id}")

    @classmethod
    def of_snapshot(cls, volume_id: str, snapshot_id: str) -> CloneSource:
        return cls(
            rbd_volume_name(volume_id), snapshot_name(snapshot_id), f"snapshot:{snapshot_id}"
        )


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
class ResizeOf:
    """The resize flow (`flow_id`) of the instance whose boot volume grows."""

    instance_id: str
    flow_id: str
    step: str


@dataclass(frozen=True, slots=True)
class ExtendVolume:
    """Grow a volume (VolumeExtended, or VolumeFailed)."""

    volume_id: str
    tenant_id: str | None
    size_gb: int
    resize: ResizeOf | None = None
    """The resize whose boot volume this is: answered BootVolumeGrown or BootVolumeGrowFailed
    as well."""

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


@dataclass(frozen=True, slots=True)
class DeleteImage:
    """Remove an image and its base snapshot (ImageDeleted, or ImageDeletionFailed)."""

    image_id: str
    tenant_id: str | None

    @property
    def key(self) -> str:
        return self.image_id


@dataclass(frozen=True, slots=True)
class AbandonImport:
    """Remove what an interrupted upload left in the pool and record the failure."""

    image_id: str
    tenant_id: str | None
    reason: str

    @property
    def key(self) -> str:
        return self.image_id


@dataclass(frozen=True, slots=True)
class DeleteSnapshot:
    """Remove a volume's snapshot (VolumeSnapshotDeleted, or VolumeSnapshotDeletionFailed)."""

    volume_id: str
    tenant_id: str | None
    snapshot_id: str

    @property
    def key(self) -> str:
        return self.volume_id  # after the snapshot's creation, before the volume's deletion


def snapshot_deletion_refused(
    volume_id: str, tenant_id: str | None, snapshot_id: str, reason: str, dependents: Sequence[str]
) -> Emit:
    """The `VolumeSnapshotDeletionFailed` of a refused deletion, refused by decide (from the
    log) or by the pool (a clone the log does not know yet)."""
    failed = VolumeSnapshotDeletionFailed(
        snapshot_id=snapshot_id, reason=reason, dependents=tuple(dependents)
    )
    return Emit(failed, volume_id, tenant_id)


@dataclass(frozen=True, slots=True)
class FenceDisks:
    """Cut every other client off the instance's RBD images, for an evacuation's `fence`
    step (InstanceDisksFenced, or InstanceDisksFenceFailed)."""

    instance_id: str
    tenant_id: str | None
    flow_id: str
    step: str
    images: tuple[str, ...]

    @property
    def key(self) -> str:
        return self.instance_id
