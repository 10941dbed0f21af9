"""Request bodies of routers; the rules that need the projection are in `routers.commands`."""

from __future__ import annotations

from virga_gateway.validation import Body, Name, Reference


class CreateRouter(Body):
    name: Name
    external_network_id: Reference
    """The external network the router takes its address (SNAT source) from."""
    tenant_id: Reference | None = None
    """Required when an admin creates one: the tenant that will own it."""


class AddRouterInterface(Body):
    network_id: Reference
    """One of the tenant's networks, attached to no other router."""
