"""Request bodies of quotas: partial limits, each `-1` (unlimited) or more; null clears."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.validation import Body

Limit = Annotated[
    int,
    msgspec.Meta(ge=-1, le=2**31 - 1, description="-1: unlimited; null: back to the default."),
]


class SetQuotas(Body):
    """The limits to change; the ones left out stay as they are."""

    instances: Limit | None = None
    vcpus: Limit | None = None
    ram_mb: Limit | None = None
    volumes: Limit | None = None
    volume_gb: Limit | None = None
    snapshots: Limit | None = None
    images: Limit | None = None
    networks: Limit | None = None
    ports: Limit | None = None
    security_groups: Limit | None = None
    keypairs: Limit | None = None
    floating_ips: Limit | None = None
    routers: Limit | None = None
