"""Reads of instances as a principal may see them: a foreign instance does not exist."""

from __future__ import annotations

import bisect

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, encode_cursor
from virga_gateway.instances.model import Instance, InstanceStatus
from virga_gateway.instances.views import InstanceList, instance_view
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState


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
