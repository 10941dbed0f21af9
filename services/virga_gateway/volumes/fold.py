"""How volume, snapshot and attachment facts fold into the gateway's projection.

Requests come from the gateway's own topic, outcomes from `<ns>.storage` (volumes) and
`<ns>.compute` (attachments); a rebuild reads the outcomes first, so every handler accepts an
aggregate's facts in any order across topics and records them per topic.
"""

from __future__ import annotations

import bisect
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from virga_events import Envelope
from virga_events.catalog import attachments, storage
from virga_gateway.instances.model import Instance
from virga_gateway.retention import earliest, is_forgotten
from virga_gateway.volumes.model import (
    OUTCOMES_KEPT,
    Attachment,
    AttachOutcome,
    AttachRequest,
    Volume,
    VolumeSnapshot,
)
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()

Operation = Literal["attach", "detach"]


def volume_record(state: GatewayState, env: Envelope) -> Volume:
    volume = state.volumes.get(env.aggregate_id)
    if volume is None:
        volume = state.volumes[env.aggregate_id] = Volume(id=env.aggregate_id)
    volume.updated_at = _latest(volume.updated_at, env.occurred_at)
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


def _latest(known: datetime | None, at: datetime) -> datetime:
    return at if known is None or at > known else known


# -- the gateway's requests --------------------------------------------------------------------


@folds.on(storage.VolumeRequested)
def _volume_requested(state: GatewayState, env: Envelope, event: storage.VolumeRequested) -> None:
    volume = volume_record(state, env)
    if volume.requested:
        return
    volume.requested = True
    volume.name, volume.image, volume.snapshot = event.name, event.image, event.snapshot
    volume.requested_size_gb = max(volume.requested_size_gb, event.size_gb)
    _list(state, volume, env.occurred_at)


@folds.on(storage.VolumeExtendRequested)
def _extend_requested(
    state: GatewayState, env: Envelope, event: storage.VolumeExtendRequested
) -> None:
    volume = volume_record(state, env)
    volume.requested_size_gb = max(volume.requested_size_gb, event.size_gb)
    if env.event_id not in volume.failed_extensions and event.size_gb > volume.size_gb:
        volume.extensions[env.event_id] = event.size_gb


@folds.on(storage.VolumeDeletionRequested)
def _deletion_requested(
    state: GatewayState, env: Envelope, event: storage.VolumeDeletionRequested
) -> None:
    volume_record(state, env).deletion_requested_at = env.occurred_at


@folds.on(storage.VolumeSnapshotRequested)
def _snapshot_requested(
    state: GatewayState, env: Envelope, event: storage.VolumeSnapshotRequested
) -> None:
    volume = volume_record(state, env)
    snapshot = _snapshot_record(state, volume, event.snapshot_id)
    snapshot.name, snapshot.request_event_id = event.name, env.event_id
    snapshot.created_at = env.occurred_at  # the request's time, whichever fact came first
    if not snapshot.created and env.event_id in volume.failed_snapshot_requests:
        snapshot.fault = volume.failed_snapshot_requests[env.event_id]


def _attach_requested(
    state: GatewayState, env: Envelope, operation: Operation, instance_id: str
) -> None:
    volume = volume_record(state, env)
    request = AttachRequest(env.event_id, operation, instance_id, env.occurred_at)
    volume.attach_requests = [*volume.attach_requests[-(OUTCOMES_KEPT - 1) :], request]


@folds.on(attachments.VolumeAttachRequested)
def _attach(state: GatewayState, env: Envelope, event: attachments.VolumeAttachRequested) -> None:
    _attach_requested(state, env, "attach", event.instance_id)


@folds.on(attachments.VolumeDetachRequested)
def _detach(state: GatewayState, env: Envelope, event: attachments.VolumeDetachRequested) -> None:
    _attach_requested(state, env, "detach", event.instance_id)


# -- the storage service's outcomes ----------------------------------------------------------


@folds.on(storage.VolumeCreated)
def _volume_created(state: GatewayState, env: Envelope, event: storage.VolumeCreated) -> None:
    volume = volume_record(state, env)
    volume.created, volume.create_fault = True, None
    volume.size_gb = max(volume.size_gb, event.size_gb)
    volume.parent, volume.clone_depth = event.parent, event.clone_depth
    volume.instance_id = event.instance_id
    if not volume.name:
        volume.name = event.name
    if event.instance_id is not None:  # a boot volume: no request of the gateway lists it
        _list(state, volume, env.occurred_at)
        if not volume.deleted:
            _instance(state, event.instance_id).boot_volume = volume.id


@folds.on(storage.VolumeFailed)
def _volume_failed(state: GatewayState, env: Envelope, event: storage.VolumeFailed) -> None:
    volume = volume_record(state, env)
    volume.fault = f"{event.operation}: {event.reason}"
    if event.operation == "create":
        volume.create_fault = event.reason
    elif event.operation == "delete":
        volume.delete_failed_at = env.occurred_at
    elif event.operation == "extend" and env.causation_id is not None:
        # The size was not reached: the tenant may ask for it again.
        volume.extensions.pop(env.causation_id, None)
        kept = volume.failed_extensions[-(OUTCOMES_KEPT - 1) :]
        volume.failed_extensions = [*kept, env.causation_id]
    elif event.operation == "snapshot":
        # The failure is caused by the request: find the snapshot that request asked for
        # (or keep the reason until the request is folded, in a rebuild).
        if env.causation_id is not None and len(volume.failed_snapshot_requests) < OUTCOMES_KEPT:
            volume.failed_snapshot_requests[env.causation_id] = event.reason
        for snapshot in volume.snapshots.values():
            if snapshot.request_event_id == env.causation_id and not snapshot.created:
                snapshot.fault = event.reason


@folds.on(storage.VolumeExtended)
def _volume_extended(state: GatewayState, env: Envelope, event: storage.VolumeExtended) -> None:
    volume = volume_record(state, env)
    volume.size_gb = max(volume.size_gb, event.size_gb)
    volume.extensions = {k: v for k, v in volume.extensions.items() if v > volume.size_gb}


@folds.on(storage.VolumeFlattened)
def _volume_flattened(state: GatewayState, env: Envelope, event: storage.VolumeFlattened) -> None:
    volume = volume_record(state, env)
    volume.flattened = True


@folds.on(storage.VolumeSnapshotCreated)
def _snapshot_created(
    state: GatewayState, env: Envelope, event: storage.VolumeSnapshotCreated
) -> None:
    volume = volume_record(state, env)
    snapshot = _snapshot_record(state, volume, event.snapshot_id)
    # The storage topic keeps a volume's facts in order: its size now is the snapshot's.
    snapshot.created, snapshot.size_gb, snapshot.fault = True, volume.size_gb, None
    if not snapshot.name:
        snapshot.name = event.name
    snapshot.created_at = snapshot.created_at or env.occurred_at


@folds.on(storage.VolumeSnapshotDeletionRequested)
def _snapshot_deletion_requested(
    state: GatewayState, env: Envelope, event: storage.VolumeSnapshotDeletionRequested
) -> None:
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deletion_requested_at = _latest(snapshot.deletion_requested_at, env.occurred_at)


@folds.on(storage.VolumeSnapshotDeleted)
def _snapshot_deleted(
    state: GatewayState, env: Envelope, event: storage.VolumeSnapshotDeleted
) -> None:
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deleted = True
    state.snapshot_volumes.pop(event.snapshot_id, None)  # nothing is cloned from it any more


@folds.on(storage.VolumeSnapshotDeletionFailed)
def _snapshot_deletion_failed(
    state: GatewayState, env: Envelope, event: storage.VolumeSnapshotDeletionFailed
) -> None:
    snapshot = _snapshot_record(state, volume_record(state, env), event.snapshot_id)
    snapshot.deletion_failed_at = _latest(snapshot.deletion_failed_at, env.occurred_at)
    snapshot.fault = f"delete: {event.reason}"


@folds.on(storage.VolumeDeleted)
def _volume_deleted(state: GatewayState, env: Envelope, event: storage.VolumeDeleted) -> None:
    volume = volume_record(state, env)
    volume.deleted = True
    volume.deleted_at = earliest(volume.deleted_at, env.occurred_at)
    if volume.instance_id is not None:
        instance = state.instances.get(volume.instance_id)
        if instance is not None and instance.boot_volume == volume.id:
            instance.boot_volume = None
    for snapshot_id in volume.snapshots:
        state.snapshot_volumes.pop(snapshot_id, None)


# -- the compute agents' outcomes ---------------------------------------------------------------


def _record_outcome(volume: Volume, env: Envelope, operation: Operation, instance_id: str) -> None:
    outcome = AttachOutcome(env.causation_id, operation, instance_id, env.occurred_at)
    volume.outcomes = [*volume.outcomes[-(OUTCOMES_KEPT - 1) :], outcome]


@folds.on(attachments.VolumeAttachmentFailed)
def _attachment_failed(
    state: GatewayState, env: Envelope, event: attachments.VolumeAttachmentFailed
) -> None:
    volume = volume_record(state, env)
    volume.fault = f"{event.operation}: {event.reason}"
    _record_outcome(volume, env, event.operation, event.instance_id)


@folds.on(attachments.VolumeAttached)
def _attached(state: GatewayState, env: Envelope, event: attachments.VolumeAttached) -> None:
    volume = volume_record(state, env)
    volume.attachment = Attachment(event.instance_id, event.host, event.target_dev)
    _instance(state, event.instance_id).attached_volumes[volume.id] = event.target_dev
    _record_outcome(volume, env, "attach", event.instance_id)


@folds.on(attachments.VolumeDetached)
def _detached(state: GatewayState, env: Envelope, event: attachments.VolumeDetached) -> None:
    volume = volume_record(state, env)
    if volume.attachment is not None and volume.attachment.instance_id == event.instance_id:
        volume.attachment = None
    _instance(state, event.instance_id).attached_volumes.pop(volume.id, None)
    _record_outcome(volume, env, "detach", event.instance_id)


def _instance(state: GatewayState, instance_id: str) -> Instance:
    """The instance (a stub until its request is folded) whose disks the volume joins; a
    forgotten one's is a scratch record, kept nowhere."""
    instance = state.instances.get(instance_id)
    if instance is None:
        instance = Instance(id=instance_id)
        if not is_forgotten(state, "instance", instance_id):
            state.instances[instance_id] = instance
    return instance
