"""Deleting a volume snapshot: the effect (the decision is `core.decide`'s).

A snapshot that volumes are still copy-on-write clones of is not deleted: the request fails
with `VolumeSnapshotDeletionFailed` naming them (flattening someone's volumes to free a
snapshot is not the snapshot owner's call), first from the log and, should a clone have
come meanwhile, from the pool itself. Otherwise the RBD snapshot is unprotected and removed,
and `VolumeSnapshotDeleted` recorded; a snapshot already gone counts as deleted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_events.catalog.storage import RBD_VOLUME_PREFIX, VolumeSnapshotDeleted, rbd_volume_name
from virga_runtime.service import EffectHandler, Emit
from virga_storage.drivers.base import HasChildren, StorageDriver, StorageError
from virga_storage.effects.intents import DeleteSnapshot, snapshot_deletion_refused, snapshot_name

log = structlog.get_logger(__name__)


class SnapshotEffects:
    """The snapshot deletion handler over the service's driver."""

    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {DeleteSnapshot: self.delete}

    async def delete(self, effect: DeleteSnapshot) -> Sequence[Emit]:
        volume_id, tenant_id, snapshot_id = effect.volume_id, effect.tenant_id, effect.snapshot_id
        try:
            await self._driver.remove_snapshot(
                rbd_volume_name(volume_id), snapshot_name(snapshot_id)
            )
        except HasChildren as error:
            dependents = [c.removeprefix(RBD_VOLUME_PREFIX) for c in error.children]
            reason = f"volumes are still clones of it: {', '.join(dependents)}"
            return [
                snapshot_deletion_refused(volume_id, tenant_id, snapshot_id, reason, dependents)
            ]
        except StorageError as error:
            log.warning("snapshot_deletion_failed", volume_id=volume_id, reason=str(error))
            return [snapshot_deletion_refused(volume_id, tenant_id, snapshot_id, str(error), ())]
        log.info("snapshot_deleted", volume_id=volume_id, snapshot_id=snapshot_id)
        return [Emit(VolumeSnapshotDeleted(snapshot_id=snapshot_id), volume_id, tenant_id)]
