"""How volume, snapshot, attachment and image facts fold into the gateway's projection.

Requests come from the gateway's own topic, outcomes from `<ns>.storage` (volumes, images)
and `<ns>.compute` (attachments); a rebuild reads the outcomes first, so every handler
accepts an aggregate's facts in any order across topics and records them per topic.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from virga_events import Envelope, Event
from virga_events.catalog import attachments, storage
from virga_gateway.model import GatewayState, Instance
from virga_gateway.storage_model import (
    OUTCOMES_KEPT,
    Attachment,
    AttachOutcome,
    AttachRequest,
    Image,
    Volume,
    VolumeSnapshot,
    VolumeStatus,
)


def _touch(record: Volume | Image, at: datetime) -> None:
    record.updated_at = _latest(record.updated_at, at)


def volume_record(state: GatewayState, env: Envelope) -> Volume:
    volume = state.volumes.get(env.aggregate_id)
    if volume is None:
        volume = state.volumes[env.aggregate_id] = Volume(id=env.aggregate_id)
    _touch(volume, env.occurred_at)
    if env.tenant_id and not volume.tenant_id:
        volume.tenant_id = env.tenant_id
    return volume


def _list(state: GatewayState, volume: Volume, created_at: datetime) -> None:
    """Give the volume its place in the listings, once."""
    if volume.listed:
        return
    volume.listed, volume.created_at = True, created_at
    key = (created_at, volume.id)
    bisect.insort(state.volume_order, key)
    bisect.insort(state.tenant_volume_order.setdefault(volume.tenant_id, []), key)


def _snapshot_record(state: GatewayState, volume: Volume, snapshot_id: str) -> VolumeSnapshot:
    snapshot = volume.snapshots.get(snapshot_id)
    if snapshot is None:
        snapshot = volume.snapshots[snapshot_id] = VolumeSnapshot(id=snapshot_id)
        state.snapshot_volumes[snapshot_id] = volume.id
    return snapshot


# -- the gateway's requests --------------------------------------------------------------------


def _volume_requested(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeRequested = env.payload
    volume = volume_record(state, env)
    if volume.requested:
        return
    volume.requested = True
    volume.name, volume.image, volume.snapshot = event.name, event.image, event.snapshot
    volume.requested_size_gb = max(volume.requested_size_gb, event.size_gb)
    _list(state, volume, env.occurred_at)


def _extend_requested(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeExtendRequested = env.payload
    volume = volume_record(state, env)
    volume.requested_size_gb = max(volume.requested_size_gb, event.size_gb)


def _deletion_requested(state: GatewayState, env: Envelope) -> None:
    volume_record(state, env).deletion_requested_at = env.occurred_at


def _snapshot_requested(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeSnapshotRequested = env.payload
    volume = volume_record(state, env)
    snapshot = _snapshot_record(state, volume, event.snapshot_id)
    snapshot.name, snapshot.request_event_id = event.name, env.event_id
    snapshot.created_at = env.occurred_at  # the request's time, whichever fact came first
    if not snapshot.created and env.event_id in volume.failed_snapshot_requests:
        snapshot.fault = volume.failed_snapshot_requests[env.event_id]


def _attach_requested(state: GatewayState, env: Envelope) -> None:
    event: attachments.VolumeAttachRequested | attachments.VolumeDetachRequested = env.payload
    operation: Literal["attach", "detach"] = (
        "attach" if isinstance(event, attachments.VolumeAttachRequested) else "detach"
    )
    volume = volume_record(state, env)
    request = AttachRequest(env.event_id, operation, event.instance_id, env.occurred_at)
    volume.attach_requests = [*volume.attach_requests[-(OUTCOMES_KEPT - 1) :], request]


# -- the storage service's outcomes ----------------------------------------------------------


def _volume_created(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeCreated = env.payload
    volume = volume_record(state, env)
    volume.created, volume.create_fault = True, None
    volume.size_gb = max(volume.size_gb, event.size_gb)
    volume.parent, volume.clone_depth = event.parent, event.clone_depth
    volume.instance_id = event.instance_id
    if not volume.name:
        volume.name = event.name
    if event.instance_id is not None:  # a boot volume: no request of the gateway lists it
        _list(state, volume, env.occurred_at)


def _volume_failed(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeFailed = env.payload
    volume = volume_record(state, env)
    volume.fault = f"{event.operation}: {event.reason}"
    if event.operation == "create":
        volume.create_fault = event.reason
    elif event.operation == "delete":
        volume.delete_failed_at = env.occurred_at
    elif event.operation == "snapshot":
        # The failure is caused by the request: find the snapshot that request asked for
        # (or keep the reason until the request is folded, in a rebuild).
        if env.causation_id is not None and len(volume.failed_snapshot_requests) < OUTCOMES_KEPT:
            volume.failed_snapshot_requests[env.causation_id] = event.reason
        for snapshot in volume.snapshots.values():
            if snapshot.request_event_id == env.causation_id and not snapshot.created:
                snapshot.fault = event.reason


def _volume_extended(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeExtended = env.payload
    volume = volume_record(state, env)
    volume.size_gb = max(volume.size_gb, event.size_gb)


def _volume_flattened(state: GatewayState, env: Envelope) -> None:
    volume = volume_record(state, env)
    volume.flattened = True


def _snapshot_created(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeSnapshotCreated = env.payload
    volume = volume_record(state, env)
    snapshot = _snapshot_record(state, volume, event.snapshot_id)
    # The storage topic keeps a volume's facts in order: its size now is the snapshot's.
    snapshot.created, snapshot.size_gb, snapshot.fault = True, volume.size_gb, None
    if not snapshot.name:
        snapshot.name = event.name
    snapshot.created_at = snapshot.created_at or env.occurred_at


def _snapshot_deletion_requested(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeSnapshotDeletionRequested = env.payload
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deletion_requested_at = _latest(snapshot.deletion_requested_at, env.occurred_at)


def _snapshot_deleted(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeSnapshotDeleted = env.payload
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deleted = True
    state.snapshot_volumes.pop(event.snapshot_id, None)  # nothing is cloned from it any more


def _snapshot_deletion_failed(state: GatewayState, env: Envelope) -> None:
    event: storage.VolumeSnapshotDeletionFailed = env.payload
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deletion_failed_at = _latest(snapshot.deletion_failed_at, env.occurred_at)
    snapshot.fault = f"delete: {event.reason}"


def _latest(known: datetime | None, at: datetime) -> datetime:
    return at if known is None or at > known else known


def _volume_deleted(state: GatewayState, env: Envelope) -> None:
    volume = volume_record(state, env)
    volume.deleted = True
    for snapshot_id in volume.snapshots:
        state.snapshot_volumes.pop(snapshot_id, None)


# -- the compute agents' outcomes ---------------------------------------------------------------


def _attachment_outcome(state: GatewayState, env: Envelope) -> None:
    event: (
        attachments.VolumeAttached | attachments.VolumeDetached | attachments.VolumeAttachmentFailed
    ) = env.payload
    volume = volume_record(state, env)
    if isinstance(event, attachments.VolumeAttachmentFailed):
        operation = event.operation
        volume.fault = f"{event.operation}: {event.reason}"
    elif isinstance(event, attachments.VolumeAttached):
        operation = "attach"
        volume.attachment = Attachment(event.instance_id, event.host, event.target_dev)
        _instance(state, event.instance_id).attached_volumes[volume.id] = event.target_dev
    else:
        operation = "detach"
        if volume.attachment is not None and volume.attachment.instance_id == event.instance_id:
            volume.attachment = None
        _instance(state, event.instance_id).attached_volumes.pop(volume.id, None)
    outcome = AttachOutcome(env.causation_id, operation, event.instance_id, env.occurred_at)
    volume.outcomes = [*volume.outcomes[-(OUTCOMES_KEPT - 1) :], outcome]


def _instance(state: GatewayState, instance_id: str) -> Instance:
    """The instance (a stub until its request is folded) whose disks the volume joins."""
    instance = state.instances.get(instance_id)
    if instance is None:
        instance = state.instances[instance_id] = Instance(id=instance_id)
    return instance


# -- images ---------------------------------------------------------------------------------


def image_record(state: GatewayState, env: Envelope) -> Image:
    image = state.images.get(env.aggregate_id)
    if image is None:
        image = state.images[env.aggregate_id] = Image(id=env.aggregate_id)
    _touch(image, env.occurred_at)
    return image


def _image_requested(state: GatewayState, env: Envelope) -> None:
    event: storage.ImageImportRequested = env.payload
    image = image_record(state, env)
    image.requested, image.name, image.tenant_id = True, event.name, env.tenant_id or ""
    image.visibility, image.disk_format = event.visibility, event.disk_format
    image.created_at = env.occurred_at


def _image_imported(state: GatewayState, env: Envelope) -> None:
    event: storage.ImageImported = env.payload
    image = image_record(state, env)
    image.imported, image.size_bytes, image.sha256 = True, event.size_bytes, event.sha256


def _image_import_failed(state: GatewayState, env: Envelope) -> None:
    event: storage.ImageImportFailed = env.payload
    image = image_record(state, env)
    image.import_fault, image.import_fault_kind = event.reason, event.kind
    image.fault = event.reason


def _image_deletion_requested(state: GatewayState, env: Envelope) -> None:
    image_record(state, env).deletion_requested_at = env.occurred_at


def _image_deletion_failed(state: GatewayState, env: Envelope) -> None:
    event: storage.ImageDeletionFailed = env.payload
    image = image_record(state, env)
    image.deletion_failed_at, image.fault = env.occurred_at, event.reason


def _image_deleted(state: GatewayState, env: Envelope) -> None:
    image_record(state, env).deleted = True


# -- derived ----------------------------------------------------------------------------------


def _gone(instance: Instance | None) -> bool:
    return instance is not None and instance.status == "DELETED"


def attachment_of(volume: Volume, instances: dict[str, Instance]) -> Attachment | None:
    """The instance the volume is a disk of, if any: attached, or a live instance's boot
    volume; an attachment to a deleted instance no longer counts."""
    if volume.instance_id is not None:
        instance = instances.get(volume.instance_id)
        if not _gone(instance):
            host = instance.host if instance is not None else None
            return Attachment(volume.instance_id, host or "", "vda")
    attachment = volume.attachment
    if attachment is not None and _gone(instances.get(attachment.instance_id)):
        return None
    return attachment


def volume_status(volume: Volume, instances: dict[str, Instance]) -> VolumeStatus:
    """Precedence stands in for order, as for instances."""
    if volume.deleted:
        return "deleted"
    if volume.deletion_requested_at is not None and (
        volume.delete_failed_at is None or volume.delete_failed_at < volume.deletion_requested_at
    ):
        return "deleting"
    if volume.create_fault is not None and not volume.created:
        return "error"
    if not volume.created:
        return "creating"
    pending = volume.pending
    if pending is not None:
        return "attaching" if pending.operation == "attach" else "detaching"
    return "in-use" if attachment_of(volume, instances) is not None else "available"


HANDLERS: dict[type[Event], Callable[[GatewayState, Envelope], None]] = {
    storage.VolumeRequested: _volume_requested,
    storage.VolumeExtendRequested: _extend_requested,
    storage.VolumeDeletionRequested: _deletion_requested,
    storage.VolumeSnapshotRequested: _snapshot_requested,
    attachments.VolumeAttachRequested: _attach_requested,
    attachments.VolumeDetachRequested: _attach_requested,
    storage.VolumeCreated: _volume_created,
    storage.VolumeFailed: _volume_failed,
    storage.VolumeExtended: _volume_extended,
    storage.VolumeFlattened: _volume_flattened,
    storage.VolumeSnapshotCreated: _snapshot_created,
    storage.VolumeSnapshotDeletionRequested: _snapshot_deletion_requested,
    storage.VolumeSnapshotDeleted: _snapshot_deleted,
    storage.VolumeSnapshotDeletionFailed: _snapshot_deletion_failed,
    storage.VolumeDeleted: _volume_deleted,
    attachments.VolumeAttached: _attachment_outcome,
    attachments.VolumeDetached: _attachment_outcome,
    attachments.VolumeAttachmentFailed: _attachment_outcome,
    storage.ImageImportRequested: _image_requested,
    storage.ImageImported: _image_imported,
    storage.ImageImportFailed: _image_import_failed,
    storage.ImageDeletionRequested: _image_deletion_requested,
    storage.ImageDeletionFailed: _image_deletion_failed,
    storage.ImageDeleted: _image_deleted,
}
