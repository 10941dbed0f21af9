"""What security group requests decide, given the projection (see `networks.commands`)."""

from __future__ import annotations

import ipaddress

from virga_events.catalog.network import (
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRule,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.security_groups.bodies import CreateSecurityGroup, RuleBody
from virga_gateway.security_groups.queries import default_group_owner, unknown_groups
from virga_gateway.security_groups.views import security_group_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def _rule_errors(
    state: GatewayState, tenant_id: str, index: int, rule: RuleBody
) -> list[FieldError]:
    at = f"rules[{index}]"
    errors: list[FieldError] = []
    if rule.protocol in ("tcp", "udp"):
        if rule.port_max is not None and rule.port_min is None:
            errors.append(FieldError(f"{at}.port_min", "is required with port_max"))
        elif rule.port_max is not None and rule.port_max < (rule.port_min or 0):
            errors.append(FieldError(f"{at}.port_max", "must not be below port_min"))
    elif rule.port_min is not None or rule.port_max is not None:
        errors.append(FieldError(f"{at}.port_min", "port ranges need protocol tcp or udp"))
    wanted = {"icmp": "IPv4", "icmpv6": "IPv6"}.get(rule.protocol)
    if wanted is not None and rule.ethertype != wanted:
        errors.append(FieldError(f"{at}.protocol", f"{rule.protocol} goes with {wanted}"))
    if rule.remote_cidr is not None and rule.remote_group is not None:
        errors.append(FieldError(f"{at}.remote_group", "give remote_cidr or remote_group"))
    if rule.remote_cidr is not None:
        try:
            peers = ipaddress.ip_network(rule.remote_cidr, strict=False)
        except ValueError as exc:
            errors.append(FieldError(f"{at}.remote_cidr", str(exc)))
        else:
            if f"IPv{peers.version}" != rule.ethertype:
                errors.append(FieldError(f"{at}.remote_cidr", f"is not {rule.ethertype}"))
    if rule.remote_group is not None:
        errors += unknown_groups(state, tenant_id, [rule.remote_group], f"{at}.remote_group")
        if errors and errors[-1].field.startswith(f"{at}.remote_group["):
            errors[-1] = FieldError(f"{at}.remote_group", errors[-1].message)
    return errors


def create_security_group(
    state: GatewayState, principal: Principal, body: CreateSecurityGroup, group_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors = [e for i, r in enumerate(body.rules) for e in _rule_errors(state, tenant_id, i, r)]
    if errors:
        raise invalid_fields(errors)
    rules = tuple(
        SecurityGroupRule(
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_min=r.port_min,
            port_max=r.port_max if r.port_max is not None else r.port_min,
            remote_cidr=(
                str(ipaddress.ip_network(r.remote_cidr, strict=False)) if r.remote_cidr else None
            ),
            remote_group=r.remote_group,
        )
        for r in body.rules
    )
    event = SecurityGroupCreated(name=body.name, rules=rules)
    return Outcome(
        201,
        (Emit(event, group_id, tenant_id),),
        lambda s: security_group_view(s.security_groups[group_id]),
    )


def delete_security_group(state: GatewayState, principal: Principal, group_id: str) -> Outcome:
    group = state.security_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        if default_group_owner(state, principal, group_id) is not None:
            raise conflict("a tenant's default security group cannot be deleted", "id")
        raise not_found("security group", group_id)
    users = [
        p.id
        for p in state.ports.values()
        if p.live and p.requested and group_id in p.security_groups
    ]
    if users:
        raise conflict(f"security group {group_id} is used by ports: {', '.join(users)}", "ports")
    referrers = [
        g.id
        for g in state.security_groups.values()
        if g.id != group_id and any(r.remote_group == group_id for r in g.rules)
    ]
    if referrers:
        detail = f"security group {group_id} is the remote group of: {', '.join(referrers)}"
        raise conflict(detail, "rules")
    return Outcome(204, (Emit(SecurityGroupDeleted(), group_id, group.tenant_id),))
