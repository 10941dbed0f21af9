"""Request bodies of floating IPs; the rules that need the projection are in
`floating_ips.commands`."""

from __future__ import annotations

from virga_gateway.validation import Body, Reference


class CreateFloatingIp(Body):
    external_network_id: Reference
    """The external network whose pools give the address."""
    tenant_id: Reference | None = None
    """Required when an admin creates one: the tenant that will own it."""


class UpdateFloatingIp(Body):
    port_id: Reference | None
    """One of the tenant's ports to point it at (it moves from its former port); null: none."""
