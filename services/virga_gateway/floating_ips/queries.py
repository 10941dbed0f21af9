"""Reads of floating IPs as a principal may see them."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.floating_ips.model import FloatingIp
from virga_gateway.floating_ips.views import FloatingIpList, FloatingIpView, floating_ip_view
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState


def find_floating_ip(state: GatewayState, principal: Principal, fip_id: str) -> FloatingIp:
    fip = state.floating_ips.get(fip_id)
    if fip is None or not fip.requested or fip.released or not principal.sees(fip.tenant_id):
        raise not_found("floating IP", fip_id)
    return fip


def list_floating_ips(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> FloatingIpList:
    """One page, oldest first, of the caller's floating IPs (every tenant's for admins)."""

    def shown(key: OrderKey) -> FloatingIpView | None:
        fip = state.floating_ips.get(key[1])
        return None if fip is None or fip.released else floating_ip_view(fip)

    orders = owned(state.tenant_floating_ip_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return FloatingIpList(items=items, next=next_cursor)
