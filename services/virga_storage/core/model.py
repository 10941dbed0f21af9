"""What the storage service knows, folded from the log: images, volumes, lineage, snapshots."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from virga_events.catalog.storage import DiskFormat, ImageVisibility

Status = Literal["creating", "available", "error"]
ImageStatus = Literal["importing", "available", "error"]


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


def image_requested_at(image: ImageRecord) -> datetime:
    return datetime.fromisoformat(image.requested_at)
