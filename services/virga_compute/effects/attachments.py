"""The compute agent's volume effect handlers: hot-plugging and unplugging volumes, with their
outcomes, and telling a running guest that a volume it uses has grown.

A failed attach or detach is a `VolumeAttachmentFailed` with the reason, never an exception;
both are safe to repeat (the driver treats the disk already there, or already gone, as done).
A grown disk is storage's fact (`VolumeExtended`); telling the guest adds none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import structlog

from virga_compute.drivers.base import ComputeDriver, DriverError, InstanceNotFound
from virga_compute.effects.intents import AttachVolume, DetachVolume, GrowDisk
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeDetached,
)
from virga_runtime.service import Emit

log = structlog.get_logger(__name__)


def _attachment_reason(exc: DriverError) -> str:
    if isinstance(exc, InstanceNotFound):
        return "the instance has no domain on its host"
    return str(exc)


class AttachmentEffects:
    """Attach and detach handlers over a driver; `ComputeEffects` adds the rest."""

    def __init__(
        self, driver: ComputeDriver, *, detach_seconds: float = 30.0, ask_again_seconds: float = 3.0
    ) -> None:
        self._driver = driver
        self._detach_seconds = detach_seconds
        """How long a live detach keeps asking a guest that has not released the disk."""
        self._ask_again_seconds = ask_again_seconds
        """How long a live detach waits for the guest before asking it again."""

    async def attach_volume(self, effect: AttachVolume) -> Sequence[Emit]:
        try:
            # Already there after a crash between the hot-plug and the event: done.
            await self._driver.attach_disk(effect.instance_id, effect.disk)
        except DriverError as exc:
            reason = _attachment_reason(exc)
            log.warning("attach_failed", instance_id=effect.instance_id, reason=reason)
            failed = VolumeAttachmentFailed(
                instance_id=effect.instance_id, operation="attach", reason=reason
            )
            return [Emit(failed, effect.volume_id, effect.tenant_id)]
        log.info(
            "volume_attached",
            instance_id=effect.instance_id,
            volume_id=effect.volume_id,
            target_dev=effect.disk.target_dev,
        )
        attached = VolumeAttached(
            instance_id=effect.instance_id, host=effect.host, target_dev=effect.disk.target_dev
        )
        return [Emit(attached, effect.volume_id, effect.tenant_id)]

    async def detach_volume(self, effect: DetachVolume) -> Sequence[Emit]:
        try:
            await self._detach_until_released(effect.instance_id, effect.target_dev)
        except DriverError as exc:
            reason = _attachment_reason(exc)
            log.warning("detach_failed", instance_id=effect.instance_id, reason=reason)
            failed = VolumeAttachmentFailed(
                instance_id=effect.instance_id, operation="detach", reason=reason
            )
            return [Emit(failed, effect.volume_id, effect.tenant_id)]
        log.info("volume_detached", instance_id=effect.instance_id, volume_id=effect.volume_id)
        detached = VolumeDetached(instance_id=effect.instance_id, host=effect.host)
        return [Emit(detached, effect.volume_id, effect.tenant_id)]

    async def grow_disk(self, effect: GrowDisk) -> Sequence[Emit]:
        fields = {
            "instance_id": effect.instance_id,
            "volume_id": effect.volume_id,
            "target_dev": effect.target_dev,
            "size_bytes": effect.size_bytes,
        }
        try:
            await self._driver.resize_disk(effect.instance_id, effect.target_dev, effect.size_bytes)
        except DriverError as exc:
            # The volume has grown all the same; the guest sees it at its next start.
            log.warning("disk_growth_not_told", reason=str(exc), **fields)
            return ()
        log.info("disk_grown", **fields)
        return ()

    async def _detach_until_released(self, instance_id: str, target_dev: str) -> None:
        """Detach, asking again until the guest lets go or `detach_seconds` pass.

        A live detach returns before QEMU lets go (the guest must release the device), and a
        guest that is still booting misses the request: the volume is detached only once the
        disk is gone from the domain. The request is repeated every `ask_again_seconds`.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._detach_seconds
        while True:
            await self._driver.detach_disk(instance_id, target_dev)
            ask_again = min(loop.time() + self._ask_again_seconds, deadline)
            while True:
                if target_dev not in await self._driver.attached_disks(instance_id):
                    return
                if loop.time() >= ask_again:
                    break
                await asyncio.sleep(0.05)
            if loop.time() >= deadline:
                raise DriverError(
                    f"the guest did not release {target_dev} within"
                    f" {self._detach_seconds:g} s; ask again to retry"
                )
