"""What volume, snapshot and attachment requests decide, given the projection.

Pure, like every resource's `commands`: ids come in as arguments. A foreign volume, image or
instance does not exist for the caller (404); a state that forbids the operation is a 409
naming `status`.
"""

from __future__ import annotations

from virga_events.catalog import attachments, storage
from virga_gateway import validation as v
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.images.queries import visible
from virga_gateway.instances.queries import find_instance
from virga_gateway.outcome import Outcome, View
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.state import GatewayState
from virga_gateway.volumes.bodies import (
    AttachVolumeBody,
    CreateVolumeBody,
    CreateVolumeSnapshot,
    VolumeAction,
)
from virga_gateway.volumes.model import Volume, attachment_of, volume_status
from virga_gateway.volumes.queries import find_volume, snapshot_dependents
from virga_gateway.volumes.views import snapshot_view, volume_view
from virga_runtime.service import Emit

GiB = 1 << 30


def _volume_answer(state: GatewayState, volume_id: str) -> View:
    return lambda after: volume_view(after.volumes[volume_id], state.instances)


def create_volume(
    state: GatewayState, principal: Principal, body: CreateVolumeBody, volume_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    owner = Principal(principal.token_id, "tenant", tenant_id)  # what the new owner may see
    errors: list[FieldError] = []
    if body.image is not None and body.snapshot is not None:
        errors.append(FieldError("snapshot", "give an image or a snapshot, not both"))
    elif body.image is not None:
        image = state.images.get(body.image)
        if image is None or not image.requested or image.deleted or not visible(image, owner):
            errors.append(FieldError("image", f"no image {body.image}"))
        elif image.status != "available":
            errors.append(FieldError("image", f"image {body.image} is {image.status}"))
        elif body.size_gb * GiB < image.size_bytes:
            need = -(-image.size_bytes // GiB)
            errors.append(FieldError("size_gb", f"must be at least the image's {need} GiB"))
    elif body.snapshot is not None:
        parent_id = state.snapshot_volumes.get(body.snapshot)
        parent = state.volumes.get(parent_id) if parent_id is not None else None
        snapshot = parent.snapshots.get(body.snapshot) if parent is not None else None
        if parent is None or snapshot is None or parent.tenant_id != tenant_id:
            errors.append(FieldError("snapshot", f"no snapshot {body.snapshot}"))
        elif snapshot.status != "available" or parent.deleted:
            errors.append(FieldError("snapshot", f"snapshot {body.snapshot} is not available"))
        elif body.size_gb < snapshot.size_gb:
            msg = f"must be at least the snapshot's {snapshot.size_gb} GiB"
            errors.append(FieldError("size_gb", msg))
    if errors:
        raise invalid_fields(errors)
    event = storage.VolumeRequested(
        name=body.name, size_gb=body.size_gb, image=body.image, snapshot=body.snapshot
    )
    return Outcome(202, (Emit(event, volume_id, tenant_id),), _volume_answer(state, volume_id))


def _require(state: GatewayState, volume: Volume, allowed: tuple[str, ...], doing: str) -> None:
    status = volume_status(volume, state.instances)
    if status not in allowed:
        raise conflict(f"cannot {doing} volume {volume.id}: it is {status}", "status")


def snapshot_volume(
    state: GatewayState,
    principal: Principal,
    volume_id: str,
    body: CreateVolumeSnapshot,
    snapshot_id: str,
) -> Outcome:
    volume = find_volume(state, principal, volume_id)
    _require(state, volume, ("available", "in-use"), "snapshot")
    event = storage.VolumeSnapshotRequested(snapshot_id=snapshot_id, name=body.name)
    return Outcome(
        202,
        (Emit(event, volume_id, volume.tenant_id),),
        lambda after: snapshot_view(volume_id, after.volumes[volume_id].snapshots[snapshot_id]),
    )


def delete_snapshot(
    state: GatewayState, principal: Principal, volume_id: str, snapshot_id: str
) -> Outcome:
    volume = find_volume(state, principal, volume_id)
    snapshot = volume.snapshots.get(snapshot_id)
    if snapshot is None or snapshot.request_event_id is None or snapshot.deleted:
        raise not_found("snapshot", snapshot_id)
    answer: View = lambda after: snapshot_view(  # noqa: E731
        volume_id, after.volumes[volume_id].snapshots[snapshot_id]
    )
    if snapshot.status == "deleting":
        return Outcome(202, (), answer)  # already on its way
    if snapshot.status == "creating":
        raise conflict(f"snapshot {snapshot_id} is still being taken", "status")
    dependents = snapshot_dependents(state, snapshot_id)
    if dependents:
        raise conflict(
            f"snapshot {snapshot_id} has volumes cloned from it: {', '.join(dependents)}",
            "volumes",
        )
    event = storage.VolumeSnapshotDeletionRequested(snapshot_id=snapshot_id)
    return Outcome(202, (Emit(event, volume_id, volume.tenant_id),), answer)


def volume_action(
    state: GatewayState, principal: Principal, volume_id: str, body: VolumeAction
) -> Outcome:
    volume = find_volume(state, principal, volume_id)
    _require(state, volume, ("available", "in-use"), body.action)
    current = max([volume.size_gb, *volume.extensions.values()])
    v.check(
        body.size_gb > current,
        "size_gb",
        f"must be larger than the volume's {current} GiB: volumes only grow",
    )
    event = storage.VolumeExtendRequested(size_gb=body.size_gb)
    return Outcome(
        202, (Emit(event, volume_id, volume.tenant_id),), _volume_answer(state, volume_id)
    )


def delete_volume(state: GatewayState, principal: Principal, volume_id: str) -> Outcome:
    volume = find_volume(state, principal, volume_id)
    status = volume_status(volume, state.instances)
    answer = _volume_answer(state, volume_id)
    if status == "deleting":
        return Outcome(202, (), answer)  # already on its way
    attachment = attachment_of(volume, state.instances)
    if attachment is not None or status in ("attaching", "detaching"):
        to = attachment.instance_id if attachment is not None else "an instance"
        raise conflict(f"volume {volume_id} is {status} ({to}): detach it first", "status")
    if status == "creating":
        raise conflict(f"volume {volume_id} is still being created", "status")
    emit = Emit(storage.VolumeDeletionRequested(), volume_id, volume.tenant_id)
    return Outcome(202, (emit,), answer)


# -- attachments ------------------------------------------------------------------------------


def attach_volume(
    state: GatewayState, principal: Principal, instance_id: str, body: AttachVolumeBody
) -> Outcome:
    instance = find_instance(state, principal, instance_id)
    if instance.status in ("DELETING", "DELETED", "ERROR"):
        raise conflict(f"instance {instance_id} is {instance.status}", "status")
    volume = state.volumes.get(body.volume_id)
    if (
        volume is None
        or not volume.listed
        or volume.deleted
        or volume.tenant_id != instance.tenant_id
    ):
        raise invalid_fields([FieldError("volume_id", f"no volume {body.volume_id}")])
    status = volume_status(volume, state.instances)
    if status != "available":
        raise conflict(f"volume {volume.id} is {status}; only an available one attaches", "status")
    event = attachments.VolumeAttachRequested(instance_id=instance_id)
    return Outcome(
        202, (Emit(event, volume.id, volume.tenant_id),), _volume_answer(state, volume.id)
    )


def detach_volume(
    state: GatewayState, principal: Principal, instance_id: str, volume_id: str
) -> Outcome:
    instance = find_instance(state, principal, instance_id)
    volume = state.volumes.get(volume_id)
    if volume is None or volume.deleted or volume.tenant_id != instance.tenant_id:
        raise not_found("volume", volume_id)
    answer = _volume_answer(state, volume_id)
    pending = volume.pending
    if pending is not None and pending.instance_id == instance_id:
        if pending.operation == "detach":
            return Outcome(202, (), answer)  # already on its way
        raise conflict(f"volume {volume_id} is still attaching; detach it once attached", "status")
    attachment = volume.attachment
    if volume.instance_id == instance_id:
        raise conflict(f"volume {volume_id} is the boot volume of {instance_id}", "status")
    if attachment is None or attachment.instance_id != instance_id:
        raise not_found(f"attachment of volume {volume_id} to instance", instance_id)
    event = attachments.VolumeDetachRequested(instance_id=instance_id)
    return Outcome(202, (Emit(event, volume_id, volume.tenant_id),), answer)
