"""Reads of tenants (admins only: the routes say so)."""

from __future__ import annotations

from virga_gateway.state import GatewayState
from virga_gateway.tenants.views import TenantList, tenant_view


def list_tenants(state: GatewayState) -> TenantList:
    tenants = sorted(state.tenants.values(), key=lambda t: (t.created_at, t.id))
    return TenantList(items=[tenant_view(t) for t in tenants])
