"""Response bodies of floating IPs, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.floating_ips.model import FloatingIp, FloatingIpStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class FloatingIpView(_View):
    id: str
    tenant_id: str
    external_network_id: str
    ip: str | None
    """The public address, once the controller gave it."""
    status: FloatingIpStatus
    """BUILDING, DOWN (an address, no port, or a port whose host has not confirmed the NAT
    yet), ACTIVE (pointed at `port_id`, its host NATs it and answers ARP), DELETING."""
    fault: str | None
    """Why the controller refused its allocation (ERROR) or its latest association."""
    port_id: str | None
    fixed_ip: str | None
    """The port's address traffic to `ip` goes to."""
    created_at: datetime
    updated_at: datetime


class FloatingIpList(_View):
    items: list[FloatingIpView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


class FloatingIpRef(_View):
    """A floating IP pointed at a port (in port and instance views)."""

    id: str
    ip: str | None


def floating_ip_view(fip: FloatingIp) -> FloatingIpView:
    assert fip.created_at is not None, "only requested floating IPs are shown"
    return FloatingIpView(
        id=fip.id,
        tenant_id=fip.tenant_id,
        external_network_id=fip.external_network_id,
        ip=fip.ip,
        status=fip.status,
        fault=fip.allocation_fault or fip.association_fault,
        port_id=fip.port_id,
        fixed_ip=fip.fixed_ip if fip.port_id is not None else None,
        created_at=fip.created_at,
        updated_at=fip.updated_at or fip.created_at,
    )
