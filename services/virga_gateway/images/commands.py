"""What image uploads and deletions decide, given the projection.

Pure, like every resource's `commands`: ids and the upload key come in as arguments.
"""

from __future__ import annotations

from virga_events.catalog import storage
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.images.queries import find_image, image_dependents
from virga_gateway.images.views import image_view
from virga_gateway.outcome import Outcome, View
from virga_gateway.problems import conflict, forbidden
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def request_image(
    state: GatewayState,
    principal: Principal,
    *,
    image_id: str,
    name: str,
    disk_format: storage.DiskFormat,
    visibility: storage.ImageVisibility,
    tenant_id: str | None,
    upload_key_sha256: str,
) -> Outcome:
    if visibility == "public":
        if not principal.is_admin:
            raise forbidden("visibility: only administrators publish public images")
        owner: str | None = None
    else:
        owner = owning_tenant(state, principal, tenant_id)
    event = storage.ImageImportRequested(
        name=name,
        disk_format=disk_format,
        visibility=visibility,
        upload_key_sha256=upload_key_sha256,
    )
    return Outcome(
        202,
        (Emit(event, image_id, owner),),
        lambda after: image_view(after.images[image_id]),
    )


def delete_image(state: GatewayState, principal: Principal, image_id: str) -> Outcome:
    image = find_image(state, principal, image_id)
    if not principal.is_admin and image.tenant_id != principal.tenant_id:
        raise forbidden(f"image {image_id} is public: only administrators delete it")
    answer: View = lambda after: image_view(after.images[image_id])  # noqa: E731
    if image.status == "deleting":
        return Outcome(202, (), answer)
    if image.status == "importing":
        raise conflict(f"image {image_id} is still importing", "status")
    dependents = image_dependents(state, image_id)
    if dependents:
        raise conflict(
            f"image {image_id} has volumes cloned from it: {', '.join(dependents)}", "volumes"
        )
    emit = Emit(storage.ImageDeletionRequested(), image_id, image.tenant_id or None)
    return Outcome(202, (emit,), answer)
