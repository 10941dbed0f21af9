"""Reads of tenants (admins only: the routes say so)."""

from __future__ import annotations

from virga_gateway.cursor import OrderKey, take_page
from virga_gateway.state import GatewayState
from virga_gateway.tenants.views import TenantList, TenantView, tenant_view


def list_tenants(state: GatewayState, *, limit: int, after: OrderKey | None = None) -> TenantList:
    """One page of tenants, oldest first."""

    def shown(key: OrderKey) -> TenantView | None:
        tenant = state.tenants.get(key[1])
        return None if tenant is None else tenant_view(tenant)

    items, next_cursor = take_page([state.tenant_order], after, limit, shown)
    return TenantList(items=items, next=next_cursor)
