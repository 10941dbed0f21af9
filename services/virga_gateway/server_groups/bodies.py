"""The request body of a new server group, with its constraints."""

from __future__ import annotations

from typing import Literal

from virga_gateway.validation import Body, Name, Reference


class CreateServerGroup(Body):
    name: Name
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"] = "host"
    tenant_id: Reference | None = None
    """Required when an admin creates a server group: the tenant that will own it."""
