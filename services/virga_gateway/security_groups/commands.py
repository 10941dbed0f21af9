"""What security group requests decide, given the projection (see `networks.commands`)."""

from __future__ import annotations

import ipaddress

from virga_events.catalog.network import (
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRule,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
    with_rule_ids,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.security_groups.bodies import CreateSecurityGroup, RuleBody
from virga_gateway.security_groups.model import SecurityGroup, rule_of
from virga_gateway.security_groups.queries import default_group_owner, unknown_groups
from virga_gateway.security_groups.views import rule_view, security_group_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit

MAX_RULES = 100
"""Most rules one security group holds (its creation's and those added since)."""


def _rule_errors(state: GatewayState, tenant_id: str, at: str, rule: RuleBody) -> list[FieldError]:
    """What is wrong with `rule`; `at` prefixes its fields' names ("rules[0]." or "")."""
    errors: list[FieldError] = []
    if rule.protocol in ("tcp", "udp"):
        if rule.port_max is not None and rule.port_min is None:
            errors.append(FieldError(f"{at}port_min", "is required with port_max"))
        elif rule.port_max is not None and rule.port_max < (rule.port_min or 0):
            errors.append(FieldError(f"{at}port_max", "must not be below port_min"))
    elif rule.port_min is not None or rule.port_max is not None:
        errors.append(FieldError(f"{at}port_min", "port ranges need protocol tcp or udp"))
    wanted = {"icmp": "IPv4", "icmpv6": "IPv6"}.get(rule.protocol)
    if wanted is not None and rule.ethertype != wanted:
        errors.append(FieldError(f"{at}protocol", f"{rule.protocol} goes with {wanted}"))
    if rule.remote_cidr is not None and rule.remote_group is not None:
        errors.append(FieldError(f"{at}remote_group", "give remote_cidr or remote_group"))
    if rule.remote_cidr is not None:
        try:
            peers = ipaddress.ip_network(rule.remote_cidr, strict=False)
        except ValueError as exc:
            errors.append(FieldError(f"{at}remote_cidr", str(exc)))
        else:
            if f"IPv{peers.version}" != rule.ethertype:
                errors.append(FieldError(f"{at}remote_cidr", f"is not {rule.ethertype}"))
    if rule.remote_group is not None:
        errors += unknown_groups(state, tenant_id, [rule.remote_group], f"{at}remote_group")
        if errors and errors[-1].field.startswith(f"{at}remote_group["):
            errors[-1] = FieldError(f"{at}remote_group", errors[-1].message)
    return errors


def _rule(body: RuleBody, rule_id: str = "") -> SecurityGroupRule:
    return SecurityGroupRule(
        direction=body.direction,
        ethertype=body.ethertype,
        protocol=body.protocol,
        port_min=body.port_min,
        port_max=body.port_max if body.port_max is not None else body.port_min,
        remote_cidr=(
            str(ipaddress.ip_network(body.remote_cidr, strict=False)) if body.remote_cidr else None
        ),
        remote_group=body.remote_group,
        id=rule_id,
    )


def create_security_group(
    state: GatewayState, principal: Principal, body: CreateSecurityGroup, group_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors = [
        e
        for i, r in enumerate(body.rules)
        for e in _rule_errors(state, tenant_id, f"rules[{i}].", r)
    ]
    if errors:
        raise invalid_fields(errors)
    rules = with_rule_ids(group_id, tuple(_rule(r) for r in body.rules))
    for index, rule in enumerate(rules):
        if any(rule.same_as(other) for other in rules[:index]):
            raise invalid_fields([FieldError(f"rules[{index}]", "repeats an earlier rule")])
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


def _own_group(state: GatewayState, principal: Principal, group_id: str) -> SecurityGroup:
    """The group a rule change is about: the caller's (an admin's: anyone's), not a default."""
    group = state.security_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        if default_group_owner(state, principal, group_id) is not None:
            raise conflict(
                "a tenant's default security group keeps its rules: create a group with the"
                " rules wanted and give it to the port",
                "id",
            )
        raise not_found("security group", group_id)
    return group


def add_rule(
    state: GatewayState, principal: Principal, group_id: str, body: RuleBody, rule_id: str
) -> Outcome:
    group = _own_group(state, principal, group_id)
    errors = _rule_errors(state, group.tenant_id, "", body)
    if errors:
        raise invalid_fields(errors)
    rule = _rule(body, rule_id)
    same = next((r for r in group.rules if rule.same_as(rule_of(r))), None)
    if same is not None:
        raise conflict(f"security group {group_id} already has this rule: {same.id}", "rules")
    if len(group.rules) >= MAX_RULES:
        raise conflict(
            f"security group {group_id} has {len(group.rules)} rules, the most a group may"
            " hold: delete one first",
            "rules",
        )
    return Outcome(
        201,
        (Emit(SecurityGroupRuleAdded(rule=rule), group_id, group.tenant_id),),
        lambda s: rule_view(next(r for r in s.security_groups[group_id].rules if r.id == rule_id)),
    )


def delete_rule(state: GatewayState, principal: Principal, group_id: str, rule_id: str) -> Outcome:
    group = _own_group(state, principal, group_id)
    if not any(r.id == rule_id for r in group.rules):
        raise not_found("security group rule", rule_id)
    event = SecurityGroupRuleDeleted(rule_id=rule_id)
    return Outcome(204, (Emit(event, group_id, group.tenant_id),))
