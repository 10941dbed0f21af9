"""Reads of the projection as a principal may see them: a foreign resource does not exist."""

from __future__ import annotations

import bisect

from virga_gateway.auth import Principal
from virga_gateway.cursor import encode_cursor
from virga_gateway.model import GatewayState, Instance, InstanceStatus, OrderKey, ServerGroup
from virga_gateway.problems import not_found
from virga_gateway.views import (
    FlavorList,
    HostList,
    InstanceList,
    ServerGroupList,
    TenantList,
    flavor_view,
    host_view,
    instance_view,
    server_group_view,
    tenant_view,
)


def find_instance(state: GatewayState, principal: Principal, instance_id: str) -> Instance:
    instance = state.instances.get(instance_id)
    if instance is None or not instance.requested or not principal.sees(instance.tenant_id):
        raise not_found("instance", instance_id)
    return instance


def list_instances(
    state: GatewayState,
    principal: Principal,
    *,
    limit: int,
    after: OrderKey | None = None,
    status: InstanceStatus | None = None,
    tenant_id: str | None = None,
) -> InstanceList:
    """One page in (created_at, id) order, after the cursor's key.

    New instances sort after every existing one, so a walk through the pages sees each
    instance once even while instances are added. DELETED ones show only when asked for.
    """
    if not principal.is_admin:
        tenant_id = principal.tenant_id
    order = (
        state.instance_order
        if tenant_id is None
        else state.tenant_instance_order.get(tenant_id, [])
    )
    start = bisect.bisect_right(order, after) if after is not None else 0
    page: list[Instance] = []
    last: OrderKey | None = None
    for key in order[start:] if start else order:
        instance = state.instances[key[1]]
        shown = instance.status == status if status else instance.status != "DELETED"
        if not shown:
            continue
        if len(page) == limit:
            assert last is not None
            return InstanceList(items=[instance_view(i) for i in page], next=encode_cursor(last))
        page.append(instance)
        last = key
    return InstanceList(items=[instance_view(i) for i in page], next=None)


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


def list_tenants(state: GatewayState) -> TenantList:
    tenants = sorted(state.tenants.values(), key=lambda t: (t.created_at, t.id))
    return TenantList(items=[tenant_view(t) for t in tenants])


def list_flavors(state: GatewayState) -> FlavorList:
    flavors = sorted(state.flavors.values(), key=lambda f: (f.vcpus, f.ram_mb, f.disk_gb, f.name))
    return FlavorList(items=[flavor_view(f) for f in flavors])


def list_hosts(state: GatewayState) -> HostList:
    hosts = sorted((h for h in state.hosts.values() if h.registered), key=lambda h: h.name)
    return HostList(items=[host_view(state, h) for h in hosts])
