"""The request body of a new flavor, with its constraints."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.validation import Body, Name


class CreateFlavor(Body):
    name: Name
    vcpus: Annotated[int, msgspec.Meta(ge=1, le=1024)]
    ram_mb: Annotated[int, msgspec.Meta(ge=64, le=16 * 1024 * 1024)]
    disk_gb: Annotated[int, msgspec.Meta(ge=0, le=64 * 1024)]
