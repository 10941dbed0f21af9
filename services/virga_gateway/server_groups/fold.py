"""How server group facts fold into the projection."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway.cursor import remove_key
from virga_gateway.server_groups.model import ServerGroup
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(api.ServerGroupCreated)
def _server_group_created(
    state: GatewayState, env: Envelope, event: api.ServerGroupCreated
) -> None:
    if env.aggregate_id in state.server_groups:
        return  # a duplicate
    key = (env.occurred_at, env.aggregate_id)
    bisect.insort(state.tenant_server_group_order.setdefault(env.tenant_id or "", []), key)
    state.server_groups[env.aggregate_id] = ServerGroup(
        env.aggregate_id,
        event.name,
        event.policy,
        event.scope,
        env.tenant_id or "",
        env.occurred_at,
    )


@folds.on(api.ServerGroupDeleted)
def _server_group_deleted(
    state: GatewayState, env: Envelope, event: api.ServerGroupDeleted
) -> None:
    group = state.server_groups.pop(env.aggregate_id, None)
    if group is not None:
        order = state.tenant_server_group_order.get(group.tenant_id, [])
        remove_key(order, (group.created_at, group.id))
        if not order:
            state.tenant_server_group_order.pop(group.tenant_id, None)
