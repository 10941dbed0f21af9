"""What a new server group's request decides, given the projection."""

from __future__ import annotations

from virga_events.catalog import api
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.outcome import Outcome
from virga_gateway.problems import conflict, not_found
from virga_gateway.server_groups.bodies import CreateServerGroup
from virga_gateway.server_groups.views import server_group_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_server_group(
    state: GatewayState, principal: Principal, body: CreateServerGroup, group_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    event = api.ServerGroupCreated(name=body.name, policy=body.policy, scope=body.scope)
    return Outcome(
        201,
        (Emit(event, group_id, tenant_id),),
        lambda s: server_group_view(s, s.server_groups[group_id]),
    )


def delete_server_group(state: GatewayState, principal: Principal, group_id: str) -> Outcome:
    """Delete a group no instance is in (a member that is not deleted yet keeps it: 409)."""
    group = state.server_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        raise not_found("server group", group_id)
    members = state.group_members.get(group_id, [])
    if members:
        detail = f"server group {group_id} still has instances: {', '.join(members)}"
        raise conflict(detail, "members")
    return Outcome(204, (Emit(api.ServerGroupDeleted(), group_id, group.tenant_id),))
