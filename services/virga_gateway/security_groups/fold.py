"""How security group facts fold into the projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import network as net
from virga_gateway.security_groups.model import RuleRecord, SecurityGroup
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(net.SecurityGroupCreated)
def _security_group_created(
    state: GatewayState, env: Envelope, event: net.SecurityGroupCreated
) -> None:
    rules = [
        RuleRecord(
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_min=r.port_min,
            port_max=r.port_max,
            remote_cidr=r.remote_cidr,
            remote_group=r.remote_group,
        )
        for r in event.rules
    ]
    state.security_groups[env.aggregate_id] = SecurityGroup(
        id=env.aggregate_id,
        tenant_id=env.tenant_id or "",
        name=event.name,
        rules=rules,
        created_at=env.occurred_at,
    )


@folds.on(net.SecurityGroupDeleted)
def _security_group_deleted(
    state: GatewayState, env: Envelope, event: net.SecurityGroupDeleted
) -> None:
    state.security_groups.pop(env.aggregate_id, None)
