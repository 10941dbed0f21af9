"""Request bodies of ports, with the constraints msgspec checks; the rules that need the
projection are in `ports.commands`."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.validation import Body, Reference

PortName = Annotated[str, msgspec.Meta(max_length=63, pattern=r"^[A-Za-z0-9._-]*$")]


class CreatePort(Body):
    network_id: Reference
    name: PortName = ""
    security_groups: Annotated[list[Reference], msgspec.Meta(max_length=16)] = []
    """Ids of the tenant's security groups; none: the tenant's default group."""
    host: Reference | None = None
    """Admins only: plug the port in on this host at once."""
    tenant_id: Reference | None = None
    """Required when an admin creates a port: the tenant that will own it."""


class UpdatePort(Body):
    security_groups: Annotated[list[Reference], msgspec.Meta(min_length=1, max_length=16)]
    """Ids of the port's tenant's security groups (its default group included): they replace
    the port's groups, and its host's agent applies them within seconds."""
