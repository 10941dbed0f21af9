"""What volume, attachment and image requests decide, and the reads of them a principal may see.

Pure, like `commands`: ids come in as arguments. A foreign volume, image or instance does not
exist for the caller (404); a state that forbids the operation is a 409 naming `status`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from virga_events.catalog import attachments, storage
from virga_gateway import validation as v
from virga_gateway.auth import Principal
from virga_gateway.commands import Outcome, View
from virga_gateway.cursor import encode_cursor
from virga_gateway.fold_storage import attachment_of, volume_status
from virga_gateway.model import GatewayState, OrderKey
from virga_gateway.problems import FieldError, conflict, forbidden, invalid_fields, not_found
from virga_gateway.queries import find_instance
from virga_gateway.storage_bodies import AttachVolume, CreateVolume, CreateVolumeSnapshot
from virga_gateway.storage_bodies import VolumeAction as VolumeActionBody
from virga_gateway.storage_model import Image, Volume
from virga_gateway.storage_views import (
    ImageList,
    VolumeList,
    image_view,
    snapshot_view,
    volume_view,
)
from virga_runtime.service import Emit

GiB = 1 << 30


# -- reads ------------------------------------------------------------------------------------


def find_volume(state: GatewayState, principal: Principal, volume_id: str) -> Volume:
    volume = state.volumes.get(volume_id)
    if volume is None or not volume.listed or volume.deleted:
        raise not_found("volume", volume_id)
    if not principal.sees(volume.tenant_id):
        raise not_found("volume", volume_id)
    return volume


def list_volumes(
    state: GatewayState,
    principal: Principal,
    *,
    limit: int,
    after: OrderKey | None = None,
    tenant_id: str | None = None,
) -> VolumeList:
    """One page in (created_at, id) order after the cursor's key; deleted volumes are left out."""
    if not principal.is_admin:
        tenant_id = principal.tenant_id
    order = (
        state.volume_order if tenant_id is None else state.tenant_volume_order.get(tenant_id, [])
    )
    start = bisect.bisect_right(order, after) if after is not None else 0
    page: list[Volume] = []
    for key in order[start:]:
        volume = state.volumes[key[1]]
        if volume.deleted:
            continue
        if len(page) == limit:
            last = page[-1]
            assert last.created_at is not None
            return VolumeList(
                items=[volume_view(x, state.instances) for x in page],
                next=encode_cursor((last.created_at, last.id)),
            )
        page.append(volume)
    return VolumeList(items=[volume_view(x, state.instances) for x in page], next=None)


def visible(image: Image, principal: Principal) -> bool:
    return image.visibility == "public" or principal.sees(image.tenant_id)


def find_image(state: GatewayState, principal: Principal, image_id: str) -> Image:
    image = state.images.get(image_id)
    if image is None or not image.requested or image.deleted or not visible(image, principal):
        raise not_found("image", image_id)
    return image


def list_images(state: GatewayState, principal: Principal) -> ImageList:
    images = sorted(
        (
            i
            for i in state.images.values()
            if i.requested and not i.deleted and visible(i, principal)
        ),
        key=lambda i: (i.created_at, i.id),
    )
    return ImageList(items=[image_view(i) for i in images])


def _live_clones(
    state: GatewayState, parent: str, cloned_from: Callable[[Volume], bool]
) -> set[str]:
    """Volumes asked as clones of a source, or made from `parent` (``image:<id>`` or
    ``snapshot:<id>``), that still read from it: not flattened, deleted or failed."""
    return {
        volume.id
        for volume in state.volumes.values()
        if (cloned_from(volume) or volume.parent == parent)
        and not volume.flattened
        and volume_status(volume, state.instances) not in ("deleted", "error")
    }


def image_dependents(state: GatewayState, image_id: str) -> list[str]:
    """Volumes that are (or are about to be) copy-on-write clones of the image, sorted."""
    found = _live_clones(state, f"image:{image_id}", lambda volume: volume.image == image_id)
    # Boot volumes still to be cloned: the instance exists, its volume does not yet.
    found |= {
        instance.id
        for instance in state.instances.values()
        if instance.image == image_id
        and instance.status not in ("DELETED", "ERROR")
        and instance.id not in state.volumes
    }
    return sorted(found)


# -- volumes ------------------------------------------------------------------------------------


def _owner(state: GatewayState, principal: Principal, requested: str | None) -> str:
    if principal.is_admin:
        v.check(requested is not None, "tenant_id", "is required when an admin creates it")
        assert requested is not None
        v.check(requested in state.tenants, "tenant_id", f"no tenant {requested}")
        return requested
    assert principal.tenant_id is not None
    v.check(requested in (None, principal.tenant_id), "tenant_id", "tenants create for themselves")
    return principal.tenant_id


def _volume_answer(state: GatewayState, volume_id: str) -> View:
    return lambda after: volume_view(after.volumes[volume_id], state.instances)


def create_volume(
    state: GatewayState, principal: Principal, body: CreateVolume, volume_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
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


def snapshot_dependents(state: GatewayState, snapshot_id: str) -> list[str]:
    """Volumes that are (or are about to be) copy-on-write clones of the snapshot, sorted."""
    parent = f"snapshot:{snapshot_id}"
    return sorted(_live_clones(state, parent, lambda volume: volume.snapshot == snapshot_id))


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
    state: GatewayState, principal: Principal, volume_id: str, body: VolumeActionBody
) -> Outcome:
    volume = find_volume(state, principal, volume_id)
    _require(state, volume, ("available", "in-use"), body.action)
    current = max(volume.size_gb, volume.requested_size_gb)
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
    state: GatewayState, principal: Principal, instance_id: str, body: AttachVolume
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


# -- images -----------------------------------------------------------------------------------


def request_image(
    state: GatewayState,
    principal: Principal,
    *,
    image_id: str,
    name: str,
    disk_format: storage.DiskFormat,
    visibility: storage.ImageVisibility,
    tenant_id: str | None,
    upload_key_sha256: str,
) -> Outcome:
    if visibility == "public":
        if not principal.is_admin:
            raise forbidden("visibility: only administrators publish public images")
        owner: str | None = None
    else:
        owner = _owner(state, principal, tenant_id)
    event = storage.ImageImportRequested(
        name=name,
        disk_format=disk_format,
        visibility=visibility,
        upload_key_sha256=upload_key_sha256,
    )
    return Outcome(
        202,
        (Emit(event, image_id, owner),),
        lambda after: image_view(after.images[image_id]),
    )


def delete_image(state: GatewayState, principal: Principal, image_id: str) -> Outcome:
    image = find_image(state, principal, image_id)
    if not principal.is_admin and image.tenant_id != principal.tenant_id:
        raise forbidden(f"image {image_id} is public: only administrators delete it")
    answer: View = lambda after: image_view(after.images[image_id])  # noqa: E731
    if image.status == "deleting":
        return Outcome(202, (), answer)
    if image.status == "importing":
        raise conflict(f"image {image_id} is still importing", "status")
    dependents = image_dependents(state, image_id)
    if dependents:
        raise conflict(
            f"image {image_id} has volumes cloned from it: {', '.join(dependents)}", "volumes"
        )
    emit = Emit(storage.ImageDeletionRequested(), image_id, image.tenant_id or None)
    return Outcome(202, (emit,), answer)
