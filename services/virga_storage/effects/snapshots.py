"""Deleting a volume snapshot: the decision and the effect.

A snapshot that volumes are still copy-on-write clones of is not deleted: the request fails
with `VolumeSnapshotDeletionFailed` naming them (flattening someone's volumes to free a
snapshot is not the snapshot owner's call), first from the log and, should a clone have
come meanwhile, from the pool itself. Otherwise the RBD snapshot is unprotected and removed,
and `VolumeSnapshotDeleted` recorded; a snapshot already gone counts as deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from virga_events import Envelope
from virga_events.catalog.storage import (
    VolumeSnapshotDeleted,
    VolumeSnapshotDeletionFailed,
    VolumeSnapshotDeletionRequested,
)
from virga_runtime.service import EffectHandler, Emit, Intent
from virga_storage.driver import HasChildren, StorageDriver, StorageError
from virga_storage.effects import VOLUME_PREFIX, snapshot_name, volume_image
from virga_storage.state import StorageState

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DeleteSnapshot:
    """Remove a volume's snapshot (VolumeSnapshotDeleted, or VolumeSnapshotDeletionFailed)."""

    volume_id: str
    tenant_id: str | None
    snapshot_id: str

    @property
    def key(self) -> str:
        return self.volume_id  # after the snapshot's creation, before the volume's deletion


def _refused(
    volume_id: str, tenant_id: str | None, snapshot_id: str, reason: str, dependents: Sequence[str]
) -> Emit:
    failed = VolumeSnapshotDeletionFailed(
        snapshot_id=snapshot_id, reason=reason, dependents=tuple(dependents)
    )
    return Emit(failed, volume_id, tenant_id)


def decide_snapshot_deletion(
    state: StorageState, envelope: Envelope, event: VolumeSnapshotDeletionRequested
) -> Sequence[Intent]:
    """Only the request that started the deletion decides it (see `state`)."""
    record = state.volumes.get(envelope.aggregate_id)
    if record is None or record.snapshot_deletions.get(event.snapshot_id) != envelope.event_id:
        return ()
    clones = state.snapshot_clones(event.snapshot_id)
    if clones:
        reason = f"volumes are still clones of it: {', '.join(clones)}"
        return [_refused(record.volume_id, record.tenant_id, event.snapshot_id, reason, clones)]
    return [DeleteSnapshot(record.volume_id, record.tenant_id, event.snapshot_id)]


class SnapshotEffects:
    """The snapshot deletion handler over the service's driver."""

    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {DeleteSnapshot: self.delete}

    async def delete(self, effect: DeleteSnapshot) -> Sequence[Emit]:
        volume_id, tenant_id, snapshot_id = effect.volume_id, effect.tenant_id, effect.snapshot_id
        try:
            await self._driver.remove_snapshot(volume_image(volume_id), snapshot_name(snapshot_id))
        except HasChildren as error:
            dependents = [c.removeprefix(VOLUME_PREFIX) for c in error.children]
            reason = f"volumes are still clones of it: {', '.join(dependents)}"
            return [_refused(volume_id, tenant_id, snapshot_id, reason, dependents)]
        except StorageError as error:
            log.warning("snapshot_deletion_failed", volume_id=volume_id, reason=str(error))
            return [_refused(volume_id, tenant_id, snapshot_id, str(error), ())]
        log.info("snapshot_deleted", volume_id=volume_id, snapshot_id=snapshot_id)
        return [Emit(VolumeSnapshotDeleted(snapshot_id=snapshot_id), volume_id, tenant_id)]
