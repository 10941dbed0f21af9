"""Request bodies of the volume and attachment operations, with their constraints."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Name, Reference

SizeGb = Annotated[int, msgspec.Meta(ge=1, le=64 * 1024, description="GiB, 1 to 65536.")]


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bodies refuse fields they do not know: a typo must not be silently ignored."""


class CreateVolume(_Body):
    name: Name
    size_gb: SizeGb
    image: Reference | None = None
    """Id of an image to clone (public, or the tenant's own); at least its size."""
    snapshot: Reference | None = None
    """Id of a snapshot of one of the tenant's volumes to clone (exclusive with `image`)."""
    tenant_id: Reference | None = None
    """Required when an admin creates a volume: the tenant that will own it."""


class CreateVolumeSnapshot(_Body):
    name: Name


class VolumeAction(_Body):
    action: Literal["extend"]
    size_gb: SizeGb
    """The new size: larger than the current one (volumes only grow)."""


class AttachVolume(_Body):
    volume_id: Reference
