"""Reads of server groups as a principal may see them: a foreign group does not exist."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.problems import not_found
from virga_gateway.server_groups.model import ServerGroup
from virga_gateway.server_groups.views import ServerGroupList, server_group_view
from virga_gateway.state import GatewayState


def find_server_group(state: GatewayState, principal: Principal, group_id: str) -> ServerGroup:
    group = state.server_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        raise not_found("server group", group_id)
    return group


def list_server_groups(state: GatewayState, principal: Principal) -> ServerGroupList:
    groups = sorted(
        (g for g in state.server_groups.values() if principal.sees(g.tenant_id)),
        key=lambda g: (g.created_at, g.id),
    )
    return ServerGroupList(items=[server_group_view(state, g) for g in groups])
