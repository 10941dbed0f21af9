"""Reads of images as a principal may see them: public ones, and the caller's own."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.images.model import Image
from virga_gateway.images.views import ImageList, ImageView, image_view
from virga_gateway.problems import not_found
from virga_gateway.retention import PUBLIC_IMAGES
from virga_gateway.state import GatewayState
from virga_gateway.volumes.queries import live_clones


def visible(image: Image, principal: Principal) -> bool:
    return image.visibility == "public" or principal.sees(image.tenant_id)


def find_image(state: GatewayState, principal: Principal, image_id: str) -> Image:
    image = state.images.get(image_id)
    if image is None or not image.requested or image.deleted or not visible(image, principal):
        raise not_found("image", image_id)
    return image


def list_images(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> ImageList:
    """One page, oldest first, of the public images and the caller's own (every one for
    admins)."""

    def shown(key: OrderKey) -> ImageView | None:
        image = state.images.get(key[1])
        if image is None or image.deleted or not visible(image, principal):
            return None
        return image_view(image)

    tenant_id = principal.listed_tenant
    orders = owned(state.image_order, tenant_id)
    if tenant_id is not None:
        orders.append(state.image_order.get(PUBLIC_IMAGES, ()))
    items, next_cursor = take_page(orders, after, limit, shown)
    return ImageList(items=items, next=next_cursor)


def image_dependents(state: GatewayState, image_id: str) -> list[str]:
    """Volumes that are (or are about to be) copy-on-write clones of the image, sorted."""
    found = live_clones(state, f"image:{image_id}", lambda volume: volume.image == image_id)
    # Boot volumes still to be cloned: the instance exists, its volume does not yet.
    found |= {
        instance.id
        for instance in state.instances.values()
        if instance.image == image_id
        and instance.status not in ("DELETED", "ERROR")
        and instance.id not in state.volumes
    }
    return sorted(found)
