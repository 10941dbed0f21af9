"""Reads of server groups as a principal may see them: a foreign group does not exist."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.problems import not_found
from virga_gateway.server_groups.model import ServerGroup
from virga_gateway.server_groups.views import (
    ServerGroupList,
    ServerGroupView,
    server_group_view,
)
from virga_gateway.state import GatewayState


def find_server_group(state: GatewayState, principal: Principal, group_id: str) -> ServerGroup:
    group = state.server_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        raise not_found("server group", group_id)
    return group


def list_server_groups(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> ServerGroupList:
    """One page, oldest first, of the caller's server groups (every tenant's for admins)."""

    def shown(key: OrderKey) -> ServerGroupView | None:
        group = state.server_groups.get(key[1])
        return None if group is None else server_group_view(state, group)

    orders = owned(state.tenant_server_group_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return ServerGroupList(items=items, next=next_cursor)
