"""The storage service's decisions: pure functions of its state and one new input event.

Only the event that made a volume's record creates it, and only the request that started a
deletion deletes it, so duplicates and later placement attempts decide nothing; an input
that decides nothing decides nothing again when re-decided after a crash.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from virga_events import Envelope
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import (
    BootVolumeGrowRequested,
    InstanceDisksFenceRequested,
    InstanceScheduled,
)
from virga_events.catalog.storage import (
    BootVolumeGrowFailed,
    BootVolumeGrown,
    ImageDeletionFailed,
    ImageDeletionRequested,
    VolumeDeletionRequested,
    VolumeExtendRequested,
    VolumeFailed,
    VolumeOperation,
    VolumeRequested,
    VolumeSnapshotDeletionRequested,
    VolumeSnapshotRequested,
    boot_volume_id,
    rbd_volume_name,
)
from virga_runtime.service import Emit, Intent
from virga_storage.config import StorageConfig
from virga_storage.core.model import StorageState, VolumeRecord, image_requested_at
from virga_storage.effects.intents import (
    AbandonImport,
    ChildVolume,
    CloneSource,
    CreateVolume,
    DeleteImage,
    DeleteSnapshot,
    DeleteVolume,
    ExtendVolume,
    FenceDisks,
    FlattenVolume,
    ResizeOf,
    SnapshotVolume,
    snapshot_deletion_refused,
)


def _failed(envelope: Envelope, operation: VolumeOperation, reason: str) -> Emit:
    return Emit(
        VolumeFailed(operation=operation, reason=reason), envelope.aggregate_id, envelope.tenant_id
    )


def decide(config: StorageConfig, state: StorageState, envelope: Envelope) -> Sequence[Intent]:
    """What to do about one new input event; `state` already includes it."""
    event = envelope.payload
    if isinstance(event, VolumeRequested | InstanceScheduled):
        volume_id = envelope.aggregate_id
        if isinstance(event, InstanceScheduled):
            volume_id = boot_volume_id(envelope.aggregate_id)
        record = state.volumes.get(volume_id)
        if record is None or record.request_event_id != envelope.event_id:
            return ()
        return _create(config, state, record)
    if isinstance(event, InstanceDisksFenceRequested):
        return [_fence(state, envelope, event)]
    if isinstance(event, VolumeExtendRequested):
        return _extend(state, envelope, event)
    if isinstance(event, BootVolumeGrowRequested):
        return _grow_boot_volume(state, envelope, event)
    if isinstance(event, VolumeSnapshotRequested):
        record = state.volumes.get(envelope.aggregate_id)
        if record is None or record.status == "error":
            return [_failed(envelope, "snapshot", "no such volume")]
        if record.deletion_event_id is not None:
            return [_failed(envelope, "snapshot", "the volume is being deleted")]
        if event.snapshot_id in state.snapshots:
            return ()  # taken already: a repeated request
        return [SnapshotVolume(record.volume_id, record.tenant_id, event.snapshot_id, event.name)]
    if isinstance(event, VolumeSnapshotDeletionRequested):
        return _delete_snapshot(state, envelope, event)
    if isinstance(event, ImageDeletionRequested):
        return _delete_image(state, envelope)
    if isinstance(event, VolumeDeletionRequested | InstanceDeleted):
        volume_id = envelope.aggregate_id
        if isinstance(event, InstanceDeleted):
            volume_id = boot_volume_id(envelope.aggregate_id)
        record = state.volumes.get(volume_id)
        if record is None or record.deletion_event_id != envelope.event_id:
            return ()
        children = tuple(
            ChildVolume(child, state.volumes[child].tenant_id)
            for child in state.children(record.volume_id)
        )
        return [DeleteVolume(record.volume_id, record.tenant_id, children)]
    return ()


def _fence(
    state: StorageState, envelope: Envelope, event: InstanceDisksFenceRequested
) -> FenceDisks:
    """The instance's boot volume (the only disk an evacuation rebuilds it with; attached
    volumes are not known here, nor re-attached on the destination)."""
    instance_id = envelope.aggregate_id
    volumes = sorted(
        record.volume_id for record in state.volumes.values() if record.instance_id == instance_id
    )
    images = tuple(rbd_volume_name(volume_id) for volume_id in volumes)
    return FenceDisks(instance_id, envelope.tenant_id, event.flow_id, event.step, images)


def _create(config: StorageConfig, state: StorageState, record: VolumeRecord) -> Sequence[Intent]:
    if record.status != "creating":
        return ()
    if record.size_gb <= 0:
        failed = VolumeFailed(operation="create", reason="size_gb must be positive")
        return [Emit(failed, record.volume_id, record.tenant_id)]
    if record.image is not None and record.snapshot is not None:
        failed = VolumeFailed(operation="create", reason="give an image or a snapshot, not both")
        return [Emit(failed, record.volume_id, record.tenant_id)]
    source: CloneSource | None = None
    if record.image is not None:
        source = CloneSource.of_image(record.image)
    elif record.snapshot is not None:
        owner = state.snapshots.get(record.snapshot)
        if owner is None:
            reason = f"no volume snapshot {record.snapshot!r}"
            return [
                Emit(
                    VolumeFailed(operation="create", reason=reason),
                    record.volume_id,
                    record.tenant_id,
                )
            ]
        source = CloneSource.of_snapshot(owner, record.snapshot)
    depth = state.clone_depth(record)
    intents: list[Intent] = [
        CreateVolume(
            volume_id=record.volume_id,
            tenant_id=record.tenant_id,
            name=record.name,
            size_gb=record.size_gb,
            source=source,
            clone_depth=depth,
            instance_id=record.instance_id,
        )
    ]
    if depth > config.max_clone_depth:
        # Runs after the clone (same key): the volume is usable at once, and stops
        # depending on its chain of parents once the copy is done.
        reason = f"clone depth {depth} is above the maximum of {config.max_clone_depth}"
        intents.append(FlattenVolume(record.volume_id, record.tenant_id, reason))
    return intents


def _extend(
    state: StorageState, envelope: Envelope, event: VolumeExtendRequested
) -> Sequence[Intent]:
    record = state.volumes.get(envelope.aggregate_id)
    if record is None or record.status == "error":
        return [_failed(envelope, "extend", "no such volume")]
    if record.deletion_event_id is not None:
        return [_failed(envelope, "extend", "the volume is being deleted")]
    if event.size_gb < record.size_gb:
        reason = f"a volume only grows: {event.size_gb} GiB is below its {record.size_gb} GiB"
        return [_failed(envelope, "extend", reason)]
    if event.size_gb == record.size_gb:
        return ()
    return [ExtendVolume(record.volume_id, record.tenant_id, event.size_gb)]


def _grow_boot_volume(
    state: StorageState, envelope: Envelope, event: BootVolumeGrowRequested
) -> Sequence[Intent]:
    """A resize's `grow` step: the instance's boot volume to the new flavor's disk. One that
    is that big already (a repeated request, an earlier resize that failed after it) is
    answered grown at once."""
    instance_id, tenant_id = envelope.aggregate_id, envelope.tenant_id
    record = state.volumes.get(boot_volume_id(instance_id))

    def failed(reason: str) -> Sequence[Intent]:
        answer = BootVolumeGrowFailed(flow_id=event.flow_id, step=event.step, reason=reason)
        return [Emit(answer, instance_id, tenant_id)]

    if record is None or record.status == "error":
        return failed(f"instance {instance_id} has no boot volume")
    if record.deletion_event_id is not None:
        return failed("the boot volume is being deleted")
    if event.size_gb <= record.size_gb:
        grown = BootVolumeGrown(flow_id=event.flow_id, step=event.step, size_gb=record.size_gb)
        return [Emit(grown, instance_id, tenant_id)]
    resize = ResizeOf(instance_id, event.flow_id, event.step)
    return [ExtendVolume(record.volume_id, record.tenant_id, event.size_gb, resize)]


def _delete_snapshot(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotDeletionRequested
) -> Sequence[Intent]:
    """Only the request that started the deletion decides it (see `core.fold`)."""
    record = state.volumes.get(envelope.aggregate_id)
    if record is None or record.snapshot_deletions.get(event.snapshot_id) != envelope.event_id:
        return ()
    clones = state.snapshot_clones(event.snapshot_id)
    if clones:
        reason = f"volumes are still clones of it: {', '.join(clones)}"
        return [
            snapshot_deletion_refused(
                record.volume_id, record.tenant_id, event.snapshot_id, reason, clones
            )
        ]
    return [DeleteSnapshot(record.volume_id, record.tenant_id, event.snapshot_id)]


def _delete_image(state: StorageState, envelope: Envelope) -> Sequence[Intent]:
    image = state.images.get(envelope.aggregate_id)
    if image is None or image.deletion_event_id != envelope.event_id:
        return ()
    clones = tuple(state.image_clones(image.image_id))
    if clones:
        # Refused without touching the pool: flattening other volumes (perhaps other
        # tenants') to free an image is not the image owner's call.
        reason = f"volumes are still clones of it: {', '.join(clones)}"
        failed = ImageDeletionFailed(reason=reason, dependents=clones)
        return [Emit(failed, image.image_id, image.tenant_id)]
    return [DeleteImage(image.image_id, image.tenant_id)]


INTERRUPTED = "the upload was interrupted: the storage service restarted before it finished"


def on_ready(state: StorageState) -> Sequence[Intent]:
    """Imports still pending when the service (re)starts lost their upload: any partial
    image in the pool is removed and the failure recorded."""
    return [
        AbandonImport(image.image_id, image.tenant_id, INTERRUPTED)
        for image in state.images.values()
        if image.status == "importing"
    ]


def tick(config: StorageConfig, state: StorageState, now: datetime) -> Sequence[Intent]:
    """Requests whose bytes never came (the gateway died before streaming them) time out."""
    horizon = now - timedelta(seconds=config.upload_timeout_seconds)
    reason = f"no upload finished within {config.upload_timeout_seconds} s of the request"
    return [
        AbandonImport(image.image_id, image.tenant_id, reason)
        for image in state.images.values()
        if image.status == "importing" and image_requested_at(image) < horizon
    ]
