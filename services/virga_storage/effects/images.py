"""The image effects' handlers: deleting an image, and abandoning an import whose upload was lost.

An upload (`upload.py`) and an abandonment may race for the same image; `UploadClaims`
lets exactly one of them act on it, so an image is never both imported and failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from virga_events.catalog.storage import (
    RBD_VOLUME_PREFIX,
    ImageDeleted,
    ImageDeletionFailed,
    ImageImportFailed,
    rbd_image_name,
)
from virga_runtime.service import EffectHandler, Emit
from virga_storage.drivers.base import HasChildren, StorageDriver, StorageError
from virga_storage.effects.intents import AbandonImport, DeleteImage

log = structlog.get_logger(__name__)


@dataclass
class UploadClaims:
    """Which image ids an upload or an abandonment has taken charge of, in this process."""

    held: dict[str, Literal["upload", "abandon"]] = field(default_factory=dict)

    def claim(self, image_id: str, by: Literal["upload", "abandon"]) -> bool:
        """Take `image_id` for `by`; False if someone already has it."""
        if image_id in self.held:
            return False
        self.held[image_id] = by
        return True

    def release(self, image_id: str) -> None:
        self.held.pop(image_id, None)


class ImageEffects:
    """Handlers of the image effects, over the service's driver and its upload claims."""

    def __init__(self, driver: StorageDriver, claims: UploadClaims) -> None:
        self._driver = driver
        self._claims = claims

    def handlers(self) -> dict[type[Any], EffectHandler]:
        return {DeleteImage: self.delete, AbandonImport: self.abandon}

    async def delete(self, effect: DeleteImage) -> Sequence[Emit]:
        try:
            await self._driver.remove(rbd_image_name(effect.image_id))
        except HasChildren as error:
            dependents = tuple(c.removeprefix(RBD_VOLUME_PREFIX) for c in error.children)
            reason = f"volumes are still clones of it: {', '.join(dependents)}"
            failed = ImageDeletionFailed(reason=reason, dependents=dependents)
            return [Emit(failed, effect.image_id, effect.tenant_id)]
        except StorageError as error:
            failed = ImageDeletionFailed(reason=str(error))
            return [Emit(failed, effect.image_id, effect.tenant_id)]
        log.info("image_deleted", image_id=effect.image_id)
        return [Emit(ImageDeleted(), effect.image_id, effect.tenant_id)]

    async def abandon(self, effect: AbandonImport) -> Sequence[Emit]:
        # An upload in progress keeps its image; the claim is never given back, so an upload
        # that starts later is refused instead of importing an image already failed.
        if not self._claims.claim(effect.image_id, "abandon"):
            return ()
        try:
            await self._driver.remove(rbd_image_name(effect.image_id), fence=True)
        except StorageError as error:
            self._claims.release(effect.image_id)  # tried again at the next restart or tick
            log.warning("import_cleanup_failed", image_id=effect.image_id, reason=str(error))
            return ()
        log.info("import_abandoned", image_id=effect.image_id, reason=effect.reason)
        failed = ImageImportFailed(reason=effect.reason, kind="interrupted")
        return [Emit(failed, effect.image_id, effect.tenant_id)]
