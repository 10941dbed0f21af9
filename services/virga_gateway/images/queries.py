"""Reads of images as a principal may see them: public ones, and the caller's own."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.images.model import Image
from virga_gateway.images.views import ImageList, image_view
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState
from virga_gateway.volumes.queries import live_clones


def visible(image: Image, principal: Principal) -> bool:
    return image.visibility == "public" or principal.sees(image.tenant_id)


def find_image(state: GatewayState, principal: Principal, image_id: str) -> Image:
    image = state.images.get(image_id)
    if image is None or not image.requested or image.deleted or not visible(image, principal):
        raise not_found("image", image_id)
    return image


def list_images(state: GatewayState, principal: Principal) -> ImageList:
    images = sorted(
        (
            i
            for i in state.images.values()
            if i.requested and not i.deleted and visible(i, principal)
        ),
        key=lambda i: (i.created_at, i.id),
    )
    return ImageList(items=[image_view(i) for i in images])


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
