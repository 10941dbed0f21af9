"""Response bodies of routers, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.routers.model import Router, RouterStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class RouterInterfaceView(_View):
    network_id: str
    gateway_ip: str | None
    """The network's gateway address, which the router answers (null while being attached)."""
    status: str
    """ACTIVE, ATTACHING or DETACHING."""


class RouterView(_View):
    id: str
    name: str
    tenant_id: str
    external_network_id: str
    external_ip: str | None
    """Its address on the external network: the source of its networks' outgoing traffic."""
    status: RouterStatus
    fault: str | None
    """Why the controller refused it (ERROR), its latest interface change, or its deletion."""
    interfaces: list[RouterInterfaceView]
    created_at: datetime
    updated_at: datetime


class RouterList(_View):
    items: list[RouterView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def router_view(router: Router) -> RouterView:
    assert router.created_at is not None, "only requested routers are shown"
    networks = dict.fromkeys([*router.interfaces, *router.pending])
    interfaces = []
    for network_id in networks:
        pending = router.pending.get(network_id)
        status = "ACTIVE" if pending is None else "ATTACHING" if pending else "DETACHING"
        gateway_ip = router.interfaces.get(network_id)
        interfaces.append(
            RouterInterfaceView(network_id=network_id, gateway_ip=gateway_ip, status=status)
        )
    return RouterView(
        id=router.id,
        name=router.name,
        tenant_id=router.tenant_id,
        external_network_id=router.external_network_id,
        external_ip=router.external_ip,
        status=router.status,
        fault=router.fault,
        interfaces=interfaces,
        created_at=router.created_at,
        updated_at=router.updated_at or router.created_at,
    )
