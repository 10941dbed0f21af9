"""Storage facts: volume and image requests (written by the gateway to `virga.api`) and the
storage service's outcomes (`virga.storage`). The aggregate is the volume or image id."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

from virga_events.registry import Event, event

UPLOAD_KEY_HEADER: Final = "X-Virga-Upload-Key"
"""The header that carries an image upload's one-time key, gateway -> storage service."""


def upload_key_digest(key: str) -> str:
    """What `ImageImportRequested.upload_key_sha256` records of an upload key."""
    return hashlib.sha256(key.encode()).hexdigest()


def boot_volume_id(instance_id: str) -> str:
    """The id of the boot volume made for an instance created with an ``"image"``: the
    instance's own id, so storage, compute and the gateway name it without a lookup."""
    return instance_id


RBD_VOLUME_PREFIX: Final = "volume-"
"""Every volume's RBD image name starts with it; storage's cleanup lists the pool by it."""


def rbd_volume_name(volume_id: str) -> str:
    """The RBD image that holds a volume (`volume-<id>`); compute hands it to QEMU."""
    return f"{RBD_VOLUME_PREFIX}{volume_id}"


def rbd_image_name(image_id: str) -> str:
    """The RBD image that holds a Virga image (`image-<id>`), which boot volumes clone."""
    return f"image-{image_id}"


VolumeOperation = Literal["create", "extend", "delete", "snapshot", "flatten"]
"""What a VolumeFailed was about."""

# -- requests, on <ns>.api ---------------------------------------------------------------------


@event("VolumeRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeRequested(Event):
    """A tenant asked for a volume: empty, or a clone of an image or of a volume snapshot."""

    name: str
    size_gb: int
    image: str | None = None
    """Image id to clone from."""
    snapshot: str | None = None
    """Volume snapshot id to clone from (exclusive with `image`)."""


@event("VolumeExtendRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeExtendRequested(Event):
    """A tenant asked to grow a volume to `size_gb`."""

    size_gb: int


@event("VolumeDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDeletionRequested(Event):
    """A tenant asked to delete a volume."""


@event("VolumeSnapshotRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSnapshotRequested(Event):
    """A tenant asked for a snapshot of a volume; `snapshot_id` is chosen by the gateway."""

    snapshot_id: str
    name: str


@event("VolumeSnapshotDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSnapshotDeletionRequested(Event):
    """A tenant asked to delete one of the volume's snapshots."""

    snapshot_id: str


# -- outcomes, on <ns>.storage -----------------------------------------------------------------


@event("VolumeCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeCreated(Event):
    """The volume exists and can be attached."""

    name: str
    size_gb: int
    parent: str | None = None
    """What it is a copy-on-write clone of: ``image:<id>`` or ``snapshot:<id>``; None if empty."""
    clone_depth: int = 0
    """Parents above it: 0 for an independent volume, 1 for a clone of an image."""
    instance_id: str | None = None
    """The instance whose boot volume it is."""


@event("VolumeFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeFailed(Event):
    """An operation on the volume failed; `reason` is shown to the user."""

    operation: VolumeOperation
    reason: str


@event("VolumeExtended")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeExtended(Event):
    """The volume was grown to `size_gb`."""

    size_gb: int


@event("VolumeDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDeleted(Event):
    """The volume and its snapshots are gone."""


@event("VolumeSnapshotCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSnapshotCreated(Event):
    """A protected snapshot of the volume exists; volumes may be cloned from it."""

    snapshot_id: str
    name: str


@event("VolumeSnapshotDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSnapshotDeleted(Event):
    """The snapshot is gone from the volume; nothing can be cloned from it any more."""

    snapshot_id: str


@event("VolumeSnapshotDeletionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSnapshotDeletionFailed(Event):
    """The snapshot was not deleted (volumes are still clones of it, or Ceph failed); it stays
    usable and its deletion may be asked again."""

    snapshot_id: str
    reason: str
    dependents: tuple[str, ...] = ()
    """Ids of the volumes that are still copy-on-write clones of it."""


@event("VolumeFlattened")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeFlattened(Event):
    """The volume no longer depends on a parent (clone too deep, or its parent is deleted)."""

    reason: str


@event("ImageImported")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageImported(Event):
    """An image's bytes are stored with a protected base snapshot (aggregate: image id)."""

    name: str
    size_bytes: int
    sha256: str
    visibility: Literal["public", "private"]


# -- images: requests on <ns>.api, outcomes on <ns>.storage (aggregate: image id) ----------

ImageVisibility = Literal["public", "private"]
DiskFormat = Literal["raw", "qcow2"]
ImportFailureKind = Literal["too_large", "bad_data", "unavailable", "interrupted", "failed"]


@event("ImageImportRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageImportRequested(Event):
    """A tenant (or an admin, for a public image) began uploading an image's bytes.

    The bytes follow over HTTP to the storage service, which answers with `ImageImported`
    or `ImageImportFailed`; a request left without either (an upload cut off, a crash) is
    failed by the storage service when it next becomes ready or after its upload timeout.
    """

    name: str
    disk_format: DiskFormat
    visibility: ImageVisibility
    upload_key_sha256: str | None = None
    """SHA-256 (hex) of the one-time key the gateway presents when it streams the bytes; the
    storage service takes bytes for this request from no one else. The key itself never
    enters the log. None in requests recorded before uploads carried a key: they are
    refused."""


@event("ImageDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageDeletionRequested(Event):
    """A tenant (or an admin) asked to delete an image."""


@event("ImageImportFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageImportFailed(Event):
    """The image's bytes could not be stored; nothing of it is left in the pool."""

    reason: str
    kind: ImportFailureKind = "failed"
    """What went wrong, for programs: the gateway answers 413, 422, 503 or 500 from it."""


@event("ImageDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageDeleted(Event):
    """The image and its base snapshot are gone from the pool."""


@event("ImageDeletionFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ImageDeletionFailed(Event):
    """The image was not deleted (clones still depend on it, or Ceph failed); it stays usable."""

    reason: str
    dependents: tuple[str, ...] = ()
    """Ids of the volumes that are still copy-on-write clones of it."""


@event("BootVolumeGrown")
@dataclass(frozen=True, slots=True, kw_only=True)
class BootVolumeGrown(Event):
    """The instance's boot volume is `size_gb` now, for the resize `flow_id` (aggregate:
    instance id; the volume's own VolumeExtended follows on its id)."""

    flow_id: str
    step: str
    size_gb: int


@event("BootVolumeGrowFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class BootVolumeGrowFailed(Event):
    """The instance's boot volume could not grow for the resize `flow_id`: `reason`."""

    flow_id: str
    step: str
    reason: str


@event("InstanceDisksFenced")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDisksFenced(Event):
    """The instance's RBD disks (aggregate: instance id) had their exclusive locks broken for
    the evacuation `flow_id`: `broken` lists the images whose holder is now blocklisted."""

    flow_id: str
    step: str
    images: tuple[str, ...] = ()
    broken: tuple[str, ...] = ()


@event("InstanceDisksFenceFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDisksFenceFailed(Event):
    """The instance's disks could not be fenced (Ceph failed): nothing may open them yet."""

    flow_id: str
    step: str
    reason: str
