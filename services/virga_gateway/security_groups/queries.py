"""Reads of security groups as a principal may see them: each tenant's implicit default group
and the ones it created."""

from __future__ import annotations

from collections.abc import Sequence

from virga_events.catalog.network import default_security_group_id
from virga_gateway.auth import Principal
from virga_gateway.cursor import EPOCH, OrderKey, owned, take_page
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


def list_security_groups(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> SecurityGroupList:
    """One page: the caller's default group first (every tenant's by tenant id, for admins),
    then the others oldest first. A default group's key is (EPOCH, its tenant's id)."""

    def shown(key: OrderKey) -> SecurityGroupView | None:
        if key[0] == EPOCH:
            return default_group_view(key[1])
        group = state.security_groups.get(key[1])
        return None if group is None else security_group_view(group)

    tenant_id = principal.listed_tenant
    tenants = sorted(state.tenants) if tenant_id is None else [tenant_id]
    defaults = [(EPOCH, t) for t in tenants]
    orders = [defaults, *owned(state.tenant_security_group_order, tenant_id)]
    items, next_cursor = take_page(orders, after, limit, shown)
    return SecurityGroupList(items=items, next=next_cursor)


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
