"""How security group facts fold into the projection."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import msgspec

from virga_events import Envelope
from virga_events.catalog import network as net
from virga_gateway.cursor import remove_key
from virga_gateway.security_groups.model import SecurityGroup, rule_record
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(net.SecurityGroupCreated)
def _security_group_created(
    state: GatewayState, env: Envelope, event: net.SecurityGroupCreated
) -> None:
    rules = [rule_record(r) for r in net.with_rule_ids(env.aggregate_id, event.rules)]
    if env.aggregate_id in state.security_groups:
        return  # a duplicate
    tenant_id = env.tenant_id or ""
    key = (env.occurred_at, env.aggregate_id)
    bisect.insort(state.tenant_security_group_order.setdefault(tenant_id, []), key)
    state.security_groups[env.aggregate_id] = SecurityGroup(
        id=env.aggregate_id,
        tenant_id=tenant_id,
        name=event.name,
        rules=rules,
        created_at=env.occurred_at,
    )


@folds.on(net.SecurityGroupDeleted)
def _security_group_deleted(
    state: GatewayState, env: Envelope, event: net.SecurityGroupDeleted
) -> None:
    group = state.security_groups.pop(env.aggregate_id, None)
    if group is not None:
        order = state.tenant_security_group_order.get(group.tenant_id, [])
        remove_key(order, (group.created_at, group.id))
        if not order:
            state.tenant_security_group_order.pop(group.tenant_id, None)


@folds.on(net.SecurityGroupRuleAdded)
def _rule_added(state: GatewayState, env: Envelope, event: net.SecurityGroupRuleAdded) -> None:
    # Records are replaced, never changed in place: a preview shares them (`state.py`).
    group = state.security_groups.get(env.aggregate_id)
    if group is not None and not any(r.id == event.rule.id for r in group.rules):
        rules = [*group.rules, rule_record(event.rule)]
        state.security_groups[group.id] = msgspec.structs.replace(group, rules=rules)


@folds.on(net.SecurityGroupRuleDeleted)
def _rule_deleted(state: GatewayState, env: Envelope, event: net.SecurityGroupRuleDeleted) -> None:
    group = state.security_groups.get(env.aggregate_id)
    if group is not None:
        rules = [r for r in group.rules if r.id != event.rule_id]
        state.security_groups[group.id] = msgspec.structs.replace(group, rules=rules)
