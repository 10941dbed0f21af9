"""Response bodies of external networks, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.external_networks.model import ExternalNetwork
from virga_gateway.networks.model import NetworkStatus
from virga_gateway.networks.views import PoolView


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class ExternalNetworkView(_View):
    id: str
    name: str
    cidr: str
    gateway_ip: str
    allocation_pools: list[PoolView]
    host_interface: str | None
    """The hosts' interface to the segment (shown to admins only)."""
    status: NetworkStatus
    fault: str | None
    created_at: datetime
    updated_at: datetime


class ExternalNetworkList(_View):
    items: list[ExternalNetworkView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def external_network_view(network: ExternalNetwork, *, admin: bool) -> ExternalNetworkView:
    assert network.created_at is not None, "only requested external networks are shown"
    return ExternalNetworkView(
        id=network.id,
        name=network.name,
        cidr=network.cidr,
        gateway_ip=network.gateway_ip,
        allocation_pools=[PoolView(start=p.start, end=p.end) for p in network.allocation_pools],
        host_interface=network.host_interface if admin else None,
        status=network.status,
        fault=network.fault,
        created_at=network.created_at,
        updated_at=network.updated_at or network.created_at,
    )
