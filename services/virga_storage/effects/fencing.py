"""The fence of an evacuation: break the exclusive locks on a dead host's guest's disks.

A guest's QEMU holds the exclusive lock of each RBD image it writes. Breaking it blocklists
that client in Ceph, so the old guest, if it still runs on a host that only lost its agent or
its network, can no longer write; only then may the disks be opened on another host
(`virga_scheduler.core.evacuation`). Safe to repeat: a second fence finds no lock to break.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import structlog

from virga_events.catalog.storage import InstanceDisksFenced, InstanceDisksFenceFailed
from virga_runtime.service import EffectHandler, Emit
from virga_storage.drivers.base import StorageDriver, StorageError
from virga_storage.effects.intents import FenceDisks

log = structlog.get_logger(__name__)


class FenceEffects:
    """The fence handler of the storage service, over its driver."""

    def __init__(self, driver: StorageDriver) -> None:
        self._driver = driver

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {FenceDisks: self.fence}

    async def fence(self, intent: FenceDisks) -> Sequence[Emit]:
        broken: list[str] = []
        try:
            for image in intent.images:
                if await self._driver.fence(image):
                    broken.append(image)
        except StorageError as error:
            log.warning("fence_failed", instance_id=intent.instance_id, reason=str(error))
            failed = InstanceDisksFenceFailed(
                flow_id=intent.flow_id, step=intent.step, reason=str(error)
            )
            return [Emit(failed, intent.instance_id, intent.tenant_id)]
        log.info(
            "disks_fenced", instance_id=intent.instance_id, images=intent.images, broken=broken
        )
        fenced = InstanceDisksFenced(
            flow_id=intent.flow_id, step=intent.step, images=intent.images, broken=tuple(broken)
        )
        return [Emit(fenced, intent.instance_id, intent.tenant_id)]
