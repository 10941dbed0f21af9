"""Response bodies of images."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_gateway.images.model import Image, ImageStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class ImageView(_View):
    id: str
    name: str
    tenant_id: str | None
    """The owner; null for a public image."""
    visibility: Literal["public", "private"]
    disk_format: Literal["raw", "qcow2"]
    """The format it was uploaded in (it is stored as raw)."""
    status: ImageStatus
    size_bytes: int
    """Size as raw, once imported: volumes cloned from it need at least this."""
    sha256: str | None
    """Of the bytes as uploaded."""
    fault: str | None
    created_at: datetime
    updated_at: datetime


class ImageList(_View):
    items: list[ImageView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def image_view(image: Image) -> ImageView:
    assert image.created_at is not None, "only requested images are shown"
    return ImageView(
        id=image.id,
        name=image.name,
        tenant_id=image.tenant_id or None,
        visibility=image.visibility,
        disk_format=image.disk_format,
        status=image.status,
        size_bytes=image.size_bytes,
        sha256=image.sha256,
        fault=image.fault,
        created_at=image.created_at,
        updated_at=image.updated_at or image.created_at,
    )
