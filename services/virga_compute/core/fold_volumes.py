"""The compute agent's fold of volume attachments, detachments and growths (`core.fold`
includes it)."""

from __future__ import annotations

from virga_compute.core.model import ATTACH_TARGETS, ComputeState, InstanceRecord
from virga_events import Envelope
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeAttachRequested,
    VolumeDetached,
)
from virga_events.catalog.storage import VolumeExtended
from virga_runtime.folding import Folds

volume_folds: Folds[ComputeState] = Folds()


@volume_folds.on(VolumeAttachRequested)
def _attach_requested(
    state: ComputeState, envelope: Envelope, event: VolumeAttachRequested
) -> None:
    key = envelope.aggregate_id
    record = state.instances.get(event.instance_id)
    if record is not None and key not in record.attachments and key not in record.attaching:
        free = [t for t in ATTACH_TARGETS if t not in record.used_targets()]
        if free:
            record.attaching[key] = free[0]


@volume_folds.on(VolumeAttachmentFailed)
def _attachment_failed(
    state: ComputeState, envelope: Envelope, event: VolumeAttachmentFailed
) -> None:
    record = state.instances.get(event.instance_id)
    if record is not None and event.operation == "attach":
        record.attaching.pop(envelope.aggregate_id, None)


def _attachment_reported(
    state: ComputeState, event: VolumeAttached | VolumeDetached
) -> InstanceRecord | None:
    """The record an attach or detach outcome is about, when this host reported it."""
    record = state.instances.get(event.instance_id)
    if record is None or event.host != state.host:
        return None
    return record


@volume_folds.on(VolumeAttached)
def _attached(state: ComputeState, envelope: Envelope, event: VolumeAttached) -> None:
    if (record := _attachment_reported(state, event)) is not None:
        record.attaching.pop(envelope.aggregate_id, None)
        record.attachments[envelope.aggregate_id] = event.target_dev


@volume_folds.on(VolumeDetached)
def _detached(state: ComputeState, envelope: Envelope, event: VolumeDetached) -> None:
    if (record := _attachment_reported(state, event)) is not None:
        record.attaching.pop(envelope.aggregate_id, None)
        record.attachments.pop(envelope.aggregate_id, None)
        record.grown.pop(envelope.aggregate_id, None)


@volume_folds.on(VolumeExtended)
def _volume_extended(state: ComputeState, envelope: Envelope, event: VolumeExtended) -> None:
    key = envelope.aggregate_id
    for record in _disks_of(state, key):
        record.grown[key] = max(record.grown.get(key, 0), event.size_gb)


def _disks_of(state: ComputeState, volume_id: str) -> list[InstanceRecord]:
    """The instances the volume is a disk of (`InstanceRecord.disk_target`), without asking
    every instance: a boot volume is named after its instance (`boot_volume_id`), so only
    that instance can boot from it; any other is found by its attachments alone."""
    found = [r for r in state.instances.values() if volume_id in r.attachments]
    booted = state.instances.get(volume_id)
    booted = None if booted is None or booted.disk_target(volume_id) is None else booted
    if booted is not None and all(r is not booted for r in found):
        found.append(booted)
    return found
