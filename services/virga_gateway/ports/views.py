"""Response bodies of ports, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.floating_ips.views import FloatingIpRef
from virga_gateway.ports.model import Port, PortStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class PortView(_View):
    id: str
    name: str
    tenant_id: str
    network_id: str
    status: PortStatus
    """BUILDING, DOWN (addresses given, not plugged in), ACTIVE (plugged in on `host`)."""
    fault: str | None
    mac: str | None
    ips: list[str]
    security_groups: list[str]
    instance_id: str | None
    """The instance the port was made for, if any (delete the instance to delete it)."""
    host: str | None
    floating_ips: list[FloatingIpRef]
    """The floating IPs pointed at it (at most one)."""
    created_at: datetime
    updated_at: datetime


class PortList(_View):
    items: list[PortView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def port_view(port: Port) -> PortView:
    assert port.created_at is not None, "only requested ports are shown"
    return PortView(
        id=port.id,
        name=port.name,
        tenant_id=port.tenant_id,
        network_id=port.network_id,
        status=port.status,
        fault=port.fault,
        mac=port.mac,
        ips=list(port.ips),
        security_groups=list(port.security_groups),
        instance_id=port.instance_id,
        host=port.bound_host or port.host,
        floating_ips=[FloatingIpRef(id=k, ip=v or None) for k, v in port.floating_ips.items()],
        created_at=port.created_at,
        updated_at=port.updated_at or port.created_at,
    )
