"""Response bodies of networks, built from the projection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_gateway.networks.model import Network, NetworkStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class PoolView(_View):
    start: str
    end: str


class NetworkView(_View):
    id: str
    name: str
    tenant_id: str
    cidr: str
    ip_version: Literal[4, 6]
    status: NetworkStatus
    """BUILDING until the controller gives it a VXLAN id; DELETING while a deletion is pending."""
    fault: str | None
    """Why the controller refused to create it (ERROR), or to delete it."""
    vni: int | None
    """Its VXLAN id, once created."""
    gateway_ip: str | None
    allocation_pools: list[PoolView]
    dhcp: bool
    """Its edges answer its guests' DHCP (DHCPv6); false: guests configure themselves
    statically (network_data.json), the metadata service still answers them."""
    ports: list[str]
    """Ids of its ports (those being created included)."""
    router_id: str | None
    """The router it is attached to, if any (its gateway address is the router's)."""
    created_at: datetime
    updated_at: datetime


class NetworkList(_View):
    items: list[NetworkView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def network_view(network: Network) -> NetworkView:
    assert network.created_at is not None, "only requested networks are shown"
    return NetworkView(
        id=network.id,
        name=network.name,
        tenant_id=network.tenant_id,
        cidr=network.cidr,
        ip_version=6 if ":" in network.cidr else 4,
        status=network.status,
        fault=network.fault,
        vni=network.vni,
        gateway_ip=network.gateway_ip,
        allocation_pools=[PoolView(start=p.start, end=p.end) for p in network.allocation_pools],
        dhcp=network.dhcp,
        ports=list(network.ports),
        router_id=network.router_id,
        created_at=network.created_at,
        updated_at=network.updated_at or network.created_at,
    )
