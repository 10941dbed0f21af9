"""Reads of routers as a principal may see them."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.problems import not_found
from virga_gateway.routers.model import Router
from virga_gateway.routers.views import RouterList, RouterView, router_view
from virga_gateway.state import GatewayState


def find_router(state: GatewayState, principal: Principal, router_id: str) -> Router:
    router = state.routers.get(router_id)
    if (
        router is None
        or not router.requested
        or router.deleted
        or not principal.sees(router.tenant_id)
    ):
        raise not_found("router", router_id)
    return router


def list_routers(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> RouterList:
    """One page, oldest first, of the caller's routers (every tenant's for admins)."""

    def shown(key: OrderKey) -> RouterView | None:
        router = state.routers.get(key[1])
        return None if router is None or router.deleted else router_view(router)

    orders = owned(state.tenant_router_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return RouterList(items=items, next=next_cursor)
