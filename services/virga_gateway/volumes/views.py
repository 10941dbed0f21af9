"""Response bodies of volumes, their snapshots and attachments."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.instances.model import Instance
from virga_gateway.volumes.model import (
    SnapshotStatus,
    Volume,
    VolumeSnapshot,
    VolumeStatus,
    attachment_of,
    volume_status,
)


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class VolumeSnapshotView(_View):
    id: str
    volume_id: str
    name: str
    status: SnapshotStatus
    size_gb: int
    """The volume's size when the snapshot was taken: a clone needs at least this."""
    fault: str | None
    created_at: datetime | None


class VolumeAttachmentView(_View):
    instance_id: str
    host: str
    device: str
    """The disk the guest sees (vda for a boot volume)."""


class VolumeView(_View):
    id: str
    name: str
    tenant_id: str
    status: VolumeStatus
    size_gb: int
    image: str | None
    """The image it was asked to be cloned from."""
    snapshot: str | None
    """The volume snapshot it was asked to be cloned from."""
    parent: str | None
    """What it is a copy-on-write clone of (``image:<id>`` or ``snapshot:<id>``); null when
    independent, or once flattened."""
    clone_depth: int
    """Parents above it on the cluster; 0 once flattened."""
    boot_of: str | None
    """The instance whose boot volume it is."""
    snapshots: list[VolumeSnapshotView]
    attachments: list[VolumeAttachmentView]
    fault: str | None
    """Why the last operation on it failed."""
    created_at: datetime
    updated_at: datetime


class VolumeList(_View):
    items: list[VolumeView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def snapshot_view(volume_id: str, snapshot: VolumeSnapshot) -> VolumeSnapshotView:
    return VolumeSnapshotView(
        id=snapshot.id,
        volume_id=volume_id,
        name=snapshot.name,
        status=snapshot.status,
        size_gb=snapshot.size_gb,
        fault=snapshot.fault,
        created_at=snapshot.created_at,
    )


def _image_of(parent: str | None) -> str | None:
    kind, _, ident = (parent or "").partition(":")
    return ident if kind == "image" and ident else None


def volume_view(volume: Volume, instances: dict[str, Instance]) -> VolumeView:
    """`instances` may be the projection before a write: volume events never change them."""
    assert volume.created_at is not None, "only listed volumes are shown"
    attachment = attachment_of(volume, instances)
    snapshots = sorted(
        volume.snapshots.values(),
        key=lambda s: (s.created_at or volume.created_at or datetime.min, s.id),
    )
    return VolumeView(
        id=volume.id,
        name=volume.name,
        tenant_id=volume.tenant_id,
        status=volume_status(volume, instances),
        size_gb=volume.size_gb or volume.requested_size_gb,
        # A boot volume was never asked for with an image: it is a clone of its instance's.
        image=volume.image or _image_of(volume.parent),
        snapshot=volume.snapshot,
        parent=None if volume.flattened else volume.parent,
        clone_depth=0 if volume.flattened else volume.clone_depth,
        boot_of=volume.instance_id,
        snapshots=[
            snapshot_view(volume.id, s) for s in snapshots if s.request_event_id and not s.deleted
        ],
        attachments=[]
        if attachment is None
        else [
            VolumeAttachmentView(
                instance_id=attachment.instance_id,
                host=attachment.host,
                device=attachment.device,
            )
        ],
        fault=volume.fault,
        created_at=volume.created_at,
        updated_at=volume.updated_at or volume.created_at,
    )
