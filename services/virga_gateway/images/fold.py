"""How image facts fold into the projection: requests from the gateway's own topic, outcomes
from `<ns>.storage`, in any order across the two."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import storage
from virga_gateway.images.model import Image
from virga_gateway.retention import earliest, image_owner
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def image_record(state: GatewayState, env: Envelope) -> Image:
    image = state.images.get(env.aggregate_id)
    if image is None:
        image = state.images[env.aggregate_id] = Image(id=env.aggregate_id)
    if image.updated_at is None or env.occurred_at > image.updated_at:
        image.updated_at = env.occurred_at
    return image


@folds.on(storage.ImageImportRequested)
def _image_requested(
    state: GatewayState, env: Envelope, event: storage.ImageImportRequested
) -> None:
    image = image_record(state, env)
    if image.requested:
        return
    image.requested, image.name, image.tenant_id = True, event.name, env.tenant_id or ""
    image.visibility, image.disk_format = event.visibility, event.disk_format
    image.created_at = env.occurred_at
    owner = image_owner(image.visibility, image.tenant_id)
    bisect.insort(state.image_order.setdefault(owner, []), (env.occurred_at, image.id))


@folds.on(storage.ImageImported)
def _image_imported(state: GatewayState, env: Envelope, event: storage.ImageImported) -> None:
    image = image_record(state, env)
    image.imported, image.size_bytes, image.sha256 = True, event.size_bytes, event.sha256


@folds.on(storage.ImageImportFailed)
def _image_import_failed(
    state: GatewayState, env: Envelope, event: storage.ImageImportFailed
) -> None:
    image = image_record(state, env)
    image.import_fault, image.import_fault_kind = event.reason, event.kind
    image.fault = event.reason
    if image.refused:  # nothing to delete: it is gone, and forgotten after the retention
        image.deleted = True
        image.deleted_at = earliest(image.deleted_at, env.occurred_at)


@folds.on(storage.ImageDeletionRequested)
def _image_deletion_requested(
    state: GatewayState, env: Envelope, event: storage.ImageDeletionRequested
) -> None:
    image_record(state, env).deletion_requested_at = env.occurred_at


@folds.on(storage.ImageDeletionFailed)
def _image_deletion_failed(
    state: GatewayState, env: Envelope, event: storage.ImageDeletionFailed
) -> None:
    image = image_record(state, env)
    image.deletion_failed_at, image.fault = env.occurred_at, event.reason


@folds.on(storage.ImageDeleted)
def _image_deleted(state: GatewayState, env: Envelope, event: storage.ImageDeleted) -> None:
    image = image_record(state, env)
    image.deleted = True
    image.deleted_at = earliest(image.deleted_at, env.occurred_at)
