"""Request bodies of the volume and attachment operations, with their constraints.

`CreateVolumeBody` and `AttachVolumeBody` carry a suffix that tells them from the storage
service's and compute agents' effects of the same name; the API publishes them without it.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Body, Name, Reference, published_as

SizeGb = Annotated[int, msgspec.Meta(ge=1, le=64 * 1024, description="GiB, 1 to 65536.")]


@published_as("CreateVolume")
class CreateVolumeBody(Body):
    name: Name
    size_gb: SizeGb
    image: Reference | None = None
    """Id of an image to clone (public, or the tenant's own); at least its size."""
    snapshot: Reference | None = None
    """Id of a snapshot of one of the tenant's volumes to clone (exclusive with `image`)."""
    tenant_id: Reference | None = None
    """Required when an admin creates a volume: the tenant that will own it."""


class CreateVolumeSnapshot(Body):
    name: Name


class VolumeAction(Body):
    action: Literal["extend"]
    size_gb: SizeGb
    """The new size: larger than the current one (volumes only grow)."""


@published_as("AttachVolume")
class AttachVolumeBody(Body):
    volume_id: Reference
