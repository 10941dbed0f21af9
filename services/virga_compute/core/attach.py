"""The compute agent's decisions on volume attach and detach requests (pure).

A request is the agent's only if the instance it names is placed on its host; every other
agent ignores it. The target device of an attach is chosen by the fold when the request is
folded (`InstanceRecord.attaching`), so requests decided in one batch, before any of them is
carried out, never share a target; a request re-decided after a crash gets the same target and
finds the disk already there, which the driver treats as done.
"""

from __future__ import annotations

from collections.abc import Sequence

from virga_compute.config import ComputeConfig
from virga_compute.core.model import ComputeState, InstanceRecord
from virga_compute.core.spec import DiskSpec
from virga_compute.effects.intents import AttachVolume, DetachVolume, GrowDisk
from virga_events import Envelope
from virga_events.catalog.attachments import (
    AttachmentOperation,
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeAttachRequested,
    VolumeDetached,
    VolumeDetachRequested,
)
from virga_runtime.service import Emit, Intent


def serial(volume_id: str) -> str:
    """The disk serial of a volume: its id, cut to the 20 bytes virtio-blk shows the guest."""
    return volume_id[:20]


def volume_disk(config: ComputeConfig, volume_id: str, target_dev: str) -> DiskSpec:
    """The RBD disk of a volume at `target_dev`; ValueError without a Ceph cluster."""
    if config.ceph is None:
        raise ValueError("this host has no Ceph cluster configured (VIRGA_CEPH_*)")
    return DiskSpec(target_dev, config.ceph.source(volume_id), serial=serial(volume_id))


def _refused(
    envelope: Envelope, instance_id: str, operation: AttachmentOperation, reason: str
) -> list[Intent]:
    failed = VolumeAttachmentFailed(instance_id=instance_id, operation=operation, reason=reason)
    return [Emit(failed, envelope.aggregate_id, envelope.tenant_id)]


def _unusable(state: ComputeState, record: InstanceRecord) -> str | None:
    """Why the instance cannot take an attachment change now, if it cannot."""
    if record.deletion_event_id is not None:
        return "the instance is being deleted"
    if record.status == "building" and state.missing(record):
        return "the instance is still being built"
    return None


def decide_attachment(
    config: ComputeConfig,
    state: ComputeState,
    envelope: Envelope,
    event: VolumeAttachRequested | VolumeDetachRequested,
) -> Sequence[Intent]:
    """What to do about an attach or detach request; `state` already includes it."""
    record = state.mine(event.instance_id)
    if record is None:
        return ()  # another host's instance (or none: the gateway answers for those)
    volume_id, instance_id = envelope.aggregate_id, event.instance_id
    operation: AttachmentOperation = (
        "attach" if isinstance(event, VolumeAttachRequested) else "detach"
    )
    reason = _unusable(state, record)
    if reason is not None:
        return _refused(envelope, instance_id, operation, reason)
    if isinstance(event, VolumeAttachRequested):
        attached_at = record.attachments.get(volume_id)
        if attached_at is not None:
            # Asked again: the answer is the same.
            again = VolumeAttached(instance_id=instance_id, host=state.host, target_dev=attached_at)
            return [Emit(again, volume_id, envelope.tenant_id)]
        target = record.attaching.get(volume_id)
        if target is None:
            return _refused(envelope, instance_id, "attach", "the instance has no free disk slot")
        try:
            disk = volume_disk(config, volume_id, target)
        except ValueError as exc:
            return _refused(envelope, instance_id, "attach", str(exc))
        return [AttachVolume(instance_id, envelope.tenant_id, state.host, volume_id, disk)]
    attached_at = record.attachments.get(volume_id)
    if attached_at is None:
        if volume_id in record.attaching:
            return _refused(envelope, instance_id, "detach", "the volume is still being attached")
        # Nothing to do: say so as done, so a repeated request gets the same answer.
        detached = VolumeDetached(instance_id=instance_id, host=state.host)
        return [Emit(detached, volume_id, envelope.tenant_id)]
    return [DetachVolume(instance_id, envelope.tenant_id, state.host, volume_id, attached_at)]


GiB = 1 << 30


def _told(record: InstanceRecord) -> bool:
    """Whether the instance has a guest to tell (it runs, as far as the agent knows)."""
    return record.status == "running" and not record.domain_lost and not record.deletion_event_id


def decide_growth(state: ComputeState, volume_id: str, size_gb: int) -> Sequence[Intent]:
    """A volume grew (`VolumeExtended`): if a running instance of this host has it as a disk
    (its boot volume, `boot_volume_id` of the instance, or an attached one), tell the guest.

    A stopped instance needs nothing: its next start opens the disk at its new size.
    """
    for record in state.instances.values():
        target = record.disk_target(volume_id)
        if target is not None and _told(record):
            return [GrowDisk(record.instance_id, volume_id, target, size_gb * GiB)]
    return ()


def growths_to_retell(state: ComputeState) -> list[Intent]:
    """At each start: every growth of a running instance's disks, told again. An agent that
    was down when a volume grew never decided it; telling a guest a size it already sees
    changes nothing (the driver never shrinks)."""
    return [
        GrowDisk(record.instance_id, volume_id, target, size_gb * GiB)
        for record in state.instances.values()
        if _told(record)
        for volume_id, size_gb in sorted(record.grown.items())
        if (target := record.disk_target(volume_id)) is not None
    ]
