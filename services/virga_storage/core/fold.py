"""The storage service's fold: what each event does to its images, volumes and snapshots.

Inputs (requests, placements, instance deletions) only record what was asked; whether a
volume exists comes only from the service's own outcome events, so the fold gives the same
state whatever the interleaving of its input topics, rebuild included.
"""

from __future__ import annotations

from virga_events import Envelope
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import (
    ImageDeleted,
    ImageDeletionFailed,
    ImageDeletionRequested,
    ImageImported,
    ImageImportFailed,
    ImageImportRequested,
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
    boot_volume_id,
)
from virga_runtime.folding import Folds
from virga_storage.core.model import ImageRecord, StorageState, VolumeRecord

TOMBSTONE_LIMIT = 10_000
"""Bound of the deleted-ids set, oldest dropped first (it only outlives late duplicates)."""

folds: Folds[StorageState] = Folds()


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


# -- images -----------------------------------------------------------------------------


@folds.on(ImageImportRequested)
def _image_import_requested(
    state: StorageState, envelope: Envelope, event: ImageImportRequested
) -> None:
    aggregate = envelope.aggregate_id
    if aggregate not in state.images and aggregate not in state.deleted:
        state.images[aggregate] = ImageRecord(
            image_id=aggregate,
            tenant_id=envelope.tenant_id,
            name=event.name,
            disk_format=event.disk_format,
            visibility=event.visibility,
            requested_at=envelope.occurred_at.isoformat(),
            upload_key_sha256=event.upload_key_sha256,
        )


@folds.on(ImageImported)
def _image_imported(state: StorageState, envelope: Envelope, event: ImageImported) -> None:
    image = state.images.get(envelope.aggregate_id)
    if image is not None:
        image.status, image.size_bytes = "available", event.size_bytes


@folds.on(ImageImportFailed)
def _image_import_failed(state: StorageState, envelope: Envelope, event: ImageImportFailed) -> None:
    image = state.images.get(envelope.aggregate_id)
    if image is not None and image.status == "importing":
        image.status = "error"


@folds.on(ImageDeletionRequested)
def _image_deletion_requested(
    state: StorageState, envelope: Envelope, event: ImageDeletionRequested
) -> None:
    image = state.images.get(envelope.aggregate_id)
    if image is not None and image.deletion_event_id is None:
        image.deletion_event_id = envelope.event_id


@folds.on(ImageDeletionFailed)
def _image_deletion_failed(
    state: StorageState, envelope: Envelope, event: ImageDeletionFailed
) -> None:
    image = state.images.get(envelope.aggregate_id)
    if image is not None:
        image.deletion_event_id = None  # a new request may try again


@folds.on(ImageDeleted)
def _image_deleted(state: StorageState, envelope: Envelope, event: ImageDeleted) -> None:
    state.images.pop(envelope.aggregate_id, None)
    _bounded_add(state.deleted, envelope.aggregate_id)


# -- volume requests ----------------------------------------------------------------------


@folds.on(VolumeRequested)
def _volume_requested(state: StorageState, envelope: Envelope, event: VolumeRequested) -> None:
    _requested(
        state,
        VolumeRecord(
            volume_id=envelope.aggregate_id,
            tenant_id=envelope.tenant_id,
            name=event.name,
            size_gb=event.size_gb,
            request_event_id=envelope.event_id,
            image=event.image,
            snapshot=event.snapshot,
        ),
    )


@folds.on(InstanceScheduled)
def _instance_scheduled(state: StorageState, envelope: Envelope, event: InstanceScheduled) -> None:
    if event.image is None:
        return
    aggregate = envelope.aggregate_id
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


@folds.on(VolumeDeletionRequested)
def _volume_deletion_requested(
    state: StorageState, envelope: Envelope, event: VolumeDeletionRequested
) -> None:
    _deletion_requested(state, envelope.aggregate_id, envelope.event_id)


@folds.on(InstanceDeleted)
def _instance_deleted(state: StorageState, envelope: Envelope, event: InstanceDeleted) -> None:
    aggregate = envelope.aggregate_id
    boot = state.volumes.get(boot_volume_id(aggregate))
    if boot is not None and boot.instance_id == aggregate and boot.delete_on_termination:
        _deletion_requested(state, boot.volume_id, envelope.event_id)


# -- volume outcomes (about a volume the state knows, except a deletion) ------------------


@folds.on(VolumeDeleted)
def _volume_deleted(state: StorageState, envelope: Envelope, event: VolumeDeleted) -> None:
    _deleted(state, envelope.aggregate_id)


@folds.on(VolumeCreated)
def _volume_created(state: StorageState, envelope: Envelope, event: VolumeCreated) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is not None:
        record.status, record.size_gb = "available", event.size_gb


@folds.on(VolumeExtended)
def _volume_extended(state: StorageState, envelope: Envelope, event: VolumeExtended) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is not None:
        record.size_gb = max(record.size_gb, event.size_gb)


@folds.on(VolumeFlattened)
def _volume_flattened(state: StorageState, envelope: Envelope, event: VolumeFlattened) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is not None:
        record.flattened = True


@folds.on(VolumeSnapshotCreated)
def _volume_snapshot_created(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotCreated
) -> None:
    aggregate = envelope.aggregate_id
    record = state.volumes.get(aggregate)
    if record is not None and event.snapshot_id not in state.snapshots:
        state.snapshots[event.snapshot_id] = aggregate
        record.snapshots.append(event.snapshot_id)


@folds.on(VolumeSnapshotDeletionRequested)
def _volume_snapshot_deletion_requested(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotDeletionRequested
) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is not None:
        # Recorded whether or not the snapshot is known yet (it comes on another topic).
        record.snapshot_deletions.setdefault(event.snapshot_id, envelope.event_id)


@folds.on(VolumeSnapshotDeleted)
def _volume_snapshot_deleted(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotDeleted
) -> None:
    aggregate = envelope.aggregate_id
    record = state.volumes.get(aggregate)
    if record is None:
        return
    record.snapshot_deletions.pop(event.snapshot_id, None)
    if state.snapshots.get(event.snapshot_id) == aggregate:
        del state.snapshots[event.snapshot_id]
        record.snapshots.remove(event.snapshot_id)


@folds.on(VolumeSnapshotDeletionFailed)
def _volume_snapshot_deletion_failed(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotDeletionFailed
) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is not None:
        record.snapshot_deletions.pop(event.snapshot_id, None)  # a new request may try again


@folds.on(VolumeFailed)
def _volume_failed(state: StorageState, envelope: Envelope, event: VolumeFailed) -> None:
    record = state.volumes.get(envelope.aggregate_id)
    if record is None:
        return
    if event.operation == "create":
        record.status = "error"
    elif event.operation == "delete":
        record.deletion_event_id = None  # a new request may try again


evolve = folds.evolve
"""Fold one event into the state (pure, deterministic)."""
