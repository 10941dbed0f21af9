"""What the storage service knows, folded from the log: images, volumes, lineage, snapshots.

Inputs (requests, placements, instance deletions) only record what was asked; whether a
volume exists comes only from the service's own outcome events, so the fold gives the same
state whatever the interleaving of its input topics, rebuild included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from virga_events import Envelope
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import (
    DiskFormat,
    ImageDeleted,
    ImageDeletionFailed,
    ImageDeletionRequested,
    ImageImported,
    ImageImportFailed,
    ImageImportRequested,
    ImageVisibility,
    VolumeCreated,
    VolumeDeleted,
    VolumeDeletionRequested,
    VolumeExtended,
    VolumeFailed,
    VolumeFlattened,
    VolumeRequested,
    VolumeSnapshotCreated,
    VolumeSnapshotDeleted,
    VolumeSnapshotDeletionFailed,
    VolumeSnapshotDeletionRequested,
)

Status = Literal["creating", "available", "error"]
ImageStatus = Literal["importing", "available", "error"]

TOMBSTONE_LIMIT = 10_000
"""Bound of the deleted-ids set, oldest dropped first (it only outlives late duplicates)."""


@dataclass(slots=True)
class VolumeRecord:
    """One volume, from its request (or its instance's placement) until it is deleted."""

    volume_id: str
    tenant_id: str | None
    name: str
    size_gb: int
    request_event_id: str
    """The event that asked for it: only that event creates it."""
    image: str | None = None
    """Image id it is (to be) cloned from."""
    snapshot: str | None = None
    """Volume snapshot id it is (to be) cloned from."""
    instance_id: str | None = None
    """Set for boot volumes."""
    delete_on_termination: bool = False
    status: Status = "creating"
    flattened: bool = False
    """Its parent link was dropped: it depends on nothing any more."""
    deletion_event_id: str | None = None
    """The deletion being carried out; None when none is pending."""
    snapshots: list[str] = field(default_factory=list)
    """Ids of its snapshots."""
    snapshot_deletions: dict[str, str] = field(default_factory=dict)
    """Snapshot id -> the deletion request being carried out: only that request decides."""


@dataclass(slots=True)
class ImageRecord:
    """One image, from its import request until it is deleted."""

    image_id: str
    tenant_id: str | None
    name: str
    disk_format: DiskFormat
    visibility: ImageVisibility
    requested_at: str
    """Event time of the request (ISO 8601): an upload that never comes times out from it."""
    status: ImageStatus = "importing"
    size_bytes: int = 0
    deletion_event_id: str | None = None
    """The deletion being carried out; None when none is pending."""
    upload_key_sha256: str | None = None
    """Digest of the key the upload must present (`ImageImportRequested`)."""


@dataclass(slots=True)
class StorageState:
    volumes: dict[str, VolumeRecord] = field(default_factory=dict)
    images: dict[str, ImageRecord] = field(default_factory=dict)
    snapshots: dict[str, str] = field(default_factory=dict)
    """Snapshot id -> id of the volume it belongs to."""
    deleted: dict[str, None] = field(default_factory=dict)
    """Ids of deleted volumes (an ordered set): a late request never brings one back."""

    def parent_volume(self, record: VolumeRecord) -> VolumeRecord | None:
        """The volume this one is a live clone of, if any."""
        if record.flattened or record.snapshot is None:
            return None
        owner = self.snapshots.get(record.snapshot)
        return None if owner is None else self.volumes.get(owner)

    def clone_depth(self, record: VolumeRecord) -> int:
        """Parents above the volume, as RBD sees them."""
        if record.flattened or (record.image is None and record.snapshot is None):
            return 0
        parent = self.parent_volume(record)
        return 1 if parent is None else 1 + self.clone_depth(parent)

    def _live_clones(self, cloned_from: Callable[[VolumeRecord], bool]) -> list[str]:
        """Volumes asked as clones of a source that still read from it (not flattened, not
        failed), sorted."""
        return sorted(
            r.volume_id
            for r in self.volumes.values()
            if cloned_from(r) and not r.flattened and r.status != "error"
        )

    def image_clones(self, image_id: str) -> list[str]:
        """Volumes that still read from the image's base snapshot, sorted."""
        return self._live_clones(lambda r: r.image == image_id)

    def snapshot_clones(self, snapshot_id: str) -> list[str]:
        """Volumes that are (or are to be) copy-on-write clones of the snapshot, sorted."""
        return self._live_clones(lambda r: r.snapshot == snapshot_id)

    def children(self, volume_id: str) -> list[str]:
        """Volumes that are live clones of one of this volume's snapshots, sorted."""
        return sorted(
            r.volume_id
            for r in self.volumes.values()
            if (p := self.parent_volume(r)) is not None and p.volume_id == volume_id
        )


def boot_volume_id(instance_id: str) -> str:
    """The id of an instance's boot volume (its RBD image is `volume-<instance id>`)."""
    return instance_id


def _bounded_add(table: dict[str, None], key: str) -> None:
    table.pop(key, None)
    table[key] = None
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]


def _requested(state: StorageState, record: VolumeRecord) -> None:
    if record.volume_id in state.deleted or record.volume_id in state.volumes:
        return  # a duplicate, a later placement attempt, or a late request
    state.volumes[record.volume_id] = record


def _deletion_requested(state: StorageState, volume_id: str, event_id: str) -> None:
    record = state.volumes.get(volume_id)
    if record is not None and record.deletion_event_id is None:
        record.deletion_event_id = event_id


def _deleted(state: StorageState, volume_id: str) -> None:
    record = state.volumes.pop(volume_id, None)
    _bounded_add(state.deleted, volume_id)
    if record is not None:
        for snapshot_id in record.snapshots:
            state.snapshots.pop(snapshot_id, None)


def _evolve_image(state: StorageState, envelope: Envelope) -> bool:
    """Fold an image event; False when `envelope` is not about an image."""
    event, aggregate = envelope.payload, envelope.aggregate_id
    image = state.images.get(aggregate)
    if isinstance(event, ImageImportRequested):
        if image is None and aggregate not in state.deleted:
            state.images[aggregate] = ImageRecord(
                image_id=aggregate,
                tenant_id=envelope.tenant_id,
                name=event.name,
                disk_format=event.disk_format,
                visibility=event.visibility,
                requested_at=envelope.occurred_at.isoformat(),
                upload_key_sha256=event.upload_key_sha256,
            )
    elif isinstance(event, ImageImported):
        if image is not None:
            image.status, image.size_bytes = "available", event.size_bytes
    elif isinstance(event, ImageImportFailed):
        if image is not None and image.status == "importing":
            image.status = "error"
    elif isinstance(event, ImageDeletionRequested):
        if image is not None and image.deletion_event_id is None:
            image.deletion_event_id = envelope.event_id
    elif isinstance(event, ImageDeletionFailed):
        if image is not None:
            image.deletion_event_id = None  # a new request may try again
    elif isinstance(event, ImageDeleted):
        state.images.pop(aggregate, None)
        _bounded_add(state.deleted, aggregate)
    else:
        return False
    return True


def image_requested_at(image: ImageRecord) -> datetime:
    return datetime.fromisoformat(image.requested_at)


def evolve(state: StorageState, envelope: Envelope) -> StorageState:
    """Fold one event into the state (pure, deterministic)."""
    if _evolve_image(state, envelope):
        return state
    event, aggregate = envelope.payload, envelope.aggregate_id
    record = state.volumes.get(aggregate)
    if isinstance(event, VolumeRequested):
        _requested(
            state,
            VolumeRecord(
                volume_id=aggregate,
                tenant_id=envelope.tenant_id,
                name=event.name,
                size_gb=event.size_gb,
                request_event_id=envelope.event_id,
                image=event.image,
                snapshot=event.snapshot,
            ),
        )
    elif isinstance(event, InstanceScheduled) and event.image is not None:
        _requested(
            state,
            VolumeRecord(
                volume_id=boot_volume_id(aggregate),
                tenant_id=envelope.tenant_id,
                name=f"{event.name}-boot",
                size_gb=event.flavor.disk_gb,
                request_event_id=envelope.event_id,
                image=event.image,
                instance_id=aggregate,
                delete_on_termination=event.delete_on_termination,
            ),
        )
    elif isinstance(event, VolumeDeletionRequested):
        _deletion_requested(state, aggregate, envelope.event_id)
    elif isinstance(event, InstanceDeleted):
        boot = state.volumes.get(boot_volume_id(aggregate))
        if boot is not None and boot.instance_id == aggregate and boot.delete_on_termination:
            _deletion_requested(state, boot.volume_id, envelope.event_id)
    elif record is None:
        if isinstance(event, VolumeDeleted):
            _deleted(state, aggregate)
    elif isinstance(event, VolumeCreated):
        record.status, record.size_gb = "available", event.size_gb
    elif isinstance(event, VolumeExtended):
        record.size_gb = max(record.size_gb, event.size_gb)
    elif isinstance(event, VolumeFlattened):
        record.flattened = True
    elif isinstance(event, VolumeSnapshotCreated):
        if event.snapshot_id not in state.snapshots:
            state.snapshots[event.snapshot_id] = aggregate
            record.snapshots.append(event.snapshot_id)
    elif isinstance(event, VolumeSnapshotDeletionRequested):
        # Recorded whether or not the snapshot is known yet (it comes on another topic).
        record.snapshot_deletions.setdefault(event.snapshot_id, envelope.event_id)
    elif isinstance(event, VolumeSnapshotDeleted):
        record.snapshot_deletions.pop(event.snapshot_id, None)
        if state.snapshots.get(event.snapshot_id) == aggregate:
            del state.snapshots[event.snapshot_id]
            record.snapshots.remove(event.snapshot_id)
    elif isinstance(event, VolumeSnapshotDeletionFailed):
        record.snapshot_deletions.pop(event.snapshot_id, None)  # a new request may try again
    elif isinstance(event, VolumeDeleted):
        _deleted(state, aggregate)
    elif isinstance(event, VolumeFailed):
        if event.operation == "create":
            record.status = "error"
        elif event.operation == "delete":
            record.deletion_event_id = None  # a new request may try again
    return state


def snapshot(state: StorageState) -> dict[str, Any]:
    """The state as orjson-able values; `restore` is its inverse."""
    return {
        "volumes": [asdict(r) for r in state.volumes.values()],
        "images": [asdict(r) for r in state.images.values()],
        "snapshots": [[k, v] for k, v in state.snapshots.items()],
        "deleted": list(state.deleted),
    }


def restore(data: dict[str, Any]) -> StorageState:
    return StorageState(
        volumes={raw["volume_id"]: VolumeRecord(**raw) for raw in data["volumes"]},
        images={raw["image_id"]: ImageRecord(**raw) for raw in data.get("images", [])},
        snapshots={k: v for k, v in data["snapshots"]},
        deleted=dict.fromkeys(data["deleted"]),
    )
