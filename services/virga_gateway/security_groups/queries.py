"""Reads of security groups as a principal may see them: each tenant's implicit default group
and the ones it created."""

from __future__ import annotations

from collections.abc import Sequence

from virga_events.catalog.network import default_security_group_id
from virga_gateway.auth import Principal
from virga_gateway.problems import FieldError, not_found
from virga_gateway.security_groups.views import (
    SecurityGroupList,
    SecurityGroupView,
    default_group_view,
    security_group_view,
)
from virga_gateway.state import GatewayState


def default_group_owner(state: GatewayState, principal: Principal, group_id: str) -> str | None:
    """The tenant whose default group `group_id` is, if the caller sees that tenant."""
    tenants = state.tenants if principal.is_admin else [principal.tenant_id or ""]
    for tenant_id in tenants:
        if default_security_group_id(tenant_id) == group_id:
            return tenant_id
    return None


def find_security_group(
    state: GatewayState, principal: Principal, group_id: str
) -> SecurityGroupView:
    group = state.security_groups.get(group_id)
    if group is not None and principal.sees(group.tenant_id):
        return security_group_view(group)
    owner = default_group_owner(state, principal, group_id)
    if owner is None:
        raise not_found("security group", group_id)
    return default_group_view(owner)


def list_security_groups(state: GatewayState, principal: Principal) -> SecurityGroupList:
    """The caller's default group first (every tenant's, for admins), then the others."""
    tenants = sorted(state.tenants) if principal.is_admin else [principal.tenant_id or ""]
    defaults = [default_group_view(t) for t in tenants]
    groups = sorted(
        (g for g in state.security_groups.values() if principal.sees(g.tenant_id)),
        key=lambda g: (g.created_at, g.id),
    )
    return SecurityGroupList(items=defaults + [security_group_view(g) for g in groups])


def unknown_groups(
    state: GatewayState, tenant_id: str, groups: Sequence[str], field: str
) -> list[FieldError]:
    """Errors naming each of `groups` that is neither the tenant's default group nor one of its
    own, as `field[index]`."""
    default = default_security_group_id(tenant_id)
    errors = []
    for index, group_id in enumerate(groups):
        group = state.security_groups.get(group_id)
        if group_id != default and (group is None or group.tenant_id != tenant_id):
            errors.append(FieldError(f"{field}[{index}]", f"no security group {group_id}"))
    return errors
