"""Volume attachments: requests the gateway writes to `virga.api` and the outcomes compute
agents write to `virga.compute`. The aggregate is the volume id, so one volume's attach,
detach and deletion stay in order in one partition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from virga_events.registry import Event, event

AttachmentOperation = Literal["attach", "detach"]


@event("VolumeAttachRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeAttachRequested(Event):
    """A tenant asked to attach the volume to one of its instances."""

    instance_id: str


@event("VolumeDetachRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDetachRequested(Event):
    """A tenant asked to detach the volume from the instance."""

    instance_id: str


@event("VolumeAttached")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeAttached(Event):
    """The instance's domain on `host` has the volume as an RBD network disk."""

    instance_id: str
    host: str
    target_dev: str
    """The device the guest sees: vdb, vdc, ..."""


@event("VolumeDetached")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeDetached(Event):
    """The volume is no longer a disk of the instance (also when the instance is deleted)."""

    instance_id: str
    host: str


@event("VolumeAttachmentFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeAttachmentFailed(Event):
    """An attach or detach could not be done; the attachment stays as it was."""

    instance_id: str
    operation: AttachmentOperation
    reason: str
