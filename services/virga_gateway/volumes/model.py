"""The gateway's records of volumes, their snapshots and attachments, folded from the api,
storage and compute topics.

As for instances, each topic's facts are kept apart and the status is derived from them by
precedence: a rebuild reads the storage and compute topics before the gateway's own one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_gateway.instances.model import Instance

VolumeStatus = Literal[
    "creating", "available", "attaching", "in-use", "detaching", "deleting", "error", "deleted"
]
VOLUME_STATUSES: tuple[VolumeStatus, ...] = (
    "creating",
    "available",
    "attaching",
    "in-use",
    "detaching",
    "deleting",
    "error",
    "deleted",
)
SnapshotStatus = Literal["creating", "available", "error", "deleting", "deleted"]

OUTCOMES_KEPT = 32
"""Attachment outcomes remembered per volume (only the latest requests need matching)."""


class VolumeSnapshot(msgspec.Struct, kw_only=True):
    """A snapshot of a volume; a stub until both its request and its outcome are folded."""

    id: str
    name: str = ""
    request_event_id: str | None = None
    created: bool = False
    size_gb: int = 0
    """The volume's size when it was taken: clones of it need at least this much."""
    fault: str | None = None
    created_at: datetime | None = None
    deletion_requested_at: datetime | None = None
    """When its latest deletion was asked."""
    deletion_failed_at: datetime | None = None
    """When its latest deletion was refused: compared by time, so either order of the two
    topics folds to the same status."""
    deleted: bool = False

    @property
    def status(self) -> SnapshotStatus:
        if self.deleted:
            return "deleted"
        requested, failed = self.deletion_requested_at, self.deletion_failed_at
        if requested is not None and (failed is None or failed < requested):
            return "deleting"
        if self.created:
            return "available"
        return "error" if self.fault is not None else "creating"


class AttachRequest(msgspec.Struct, frozen=True):
    event_id: str
    operation: Literal["attach", "detach"]
    instance_id: str
    occurred_at: datetime


class AttachOutcome(msgspec.Struct, frozen=True):
    causation_id: str | None
    operation: Literal["attach", "detach"]
    instance_id: str
    occurred_at: datetime

    def settles(self, request: AttachRequest) -> bool:
        """Whether this outcome answers `request` (its cause, or a later one of its kind)."""
        if self.causation_id == request.event_id:
            return True
        return (self.operation, self.instance_id) == (
            request.operation,
            request.instance_id,
        ) and self.occurred_at >= request.occurred_at


class Attachment(msgspec.Struct, frozen=True):
    instance_id: str
    host: str
    device: str


class Volume(msgspec.Struct, kw_only=True):
    """A volume as the gateway knows it; listed once requested (or created as a boot volume)."""

    id: str
    listed: bool = False
    tenant_id: str = ""
    name: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The gateway's own facts (api topic).
    requested: bool = False
    requested_size_gb: int = 0
    """The size asked for, grown by extend requests (what the quota counts)."""
    extensions: dict[str, int] = msgspec.field(default_factory=dict)
    """Extend request event id -> size, until the volume has it or the request failed: the
    next extend must exceed the largest (and the size), so a failed one may be asked again."""
    failed_extensions: list[str] = msgspec.field(default_factory=list)
    """Ids of the last failed extend requests, for failures folded before their request."""
    image: str | None = None
    snapshot: str | None = None
    deletion_requested_at: datetime | None = None
    attach_requests: list[AttachRequest] = msgspec.field(default_factory=list)
    # The storage service's facts.
    created: bool = False
    size_gb: int = 0
    parent: str | None = None
    clone_depth: int = 0
    flattened: bool = False
    instance_id: str | None = None
    """The instance whose boot volume it is."""
    create_fault: str | None = None
    delete_failed_at: datetime | None = None
    fault: str | None = None
    """The reason of the last failed operation."""
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""
    snapshots: dict[str, VolumeSnapshot] = msgspec.field(default_factory=dict)
    failed_snapshot_requests: dict[str, str] = msgspec.field(default_factory=dict)
    """Request event id -> reason, for snapshot failures folded before their request."""
    # The compute agents' facts.
    attachment: Attachment | None = None
    outcomes: list[AttachOutcome] = msgspec.field(default_factory=list)

    @property
    def pending(self) -> AttachRequest | None:
        """The latest attach or detach request, while no outcome has answered it."""
        if not self.attach_requests:
            return None
        last = self.attach_requests[-1]
        return None if any(o.settles(last) for o in self.outcomes) else last


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
