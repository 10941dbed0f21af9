"""Response bodies of security groups: the ones tenants created, and each tenant's default."""

from __future__ import annotations

from typing import Literal

import msgspec

from virga_events.catalog.network import (
    DEFAULT_SECURITY_GROUP_NAME,
    default_security_group_id,
    default_security_group_rules,
)
from virga_gateway.security_groups.model import RuleRecord, SecurityGroup, rule_record


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class RuleView(_View):
    id: str
    """Its id within the group (`DELETE /v1/security-groups/{id}/rules/{rule_id}`)."""
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: Literal["any", "tcp", "udp", "icmp", "icmpv6"]
    port_min: int | None
    port_max: int | None
    remote_cidr: str | None
    remote_group: str | None


class SecurityGroupView(_View):
    id: str
    name: str
    tenant_id: str
    default: bool
    """The tenant's default group: ports that name no group get it; it cannot be deleted."""
    rules: list[RuleView]


class SecurityGroupList(_View):
    items: list[SecurityGroupView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def rule_view(rule: RuleRecord) -> RuleView:
    return RuleView(
        id=rule.id,
        direction=rule.direction,
        ethertype=rule.ethertype,
        protocol=rule.protocol,
        port_min=rule.port_min,
        port_max=rule.port_max,
        remote_cidr=rule.remote_cidr,
        remote_group=rule.remote_group,
    )


def security_group_view(group: SecurityGroup) -> SecurityGroupView:
    return SecurityGroupView(
        id=group.id,
        name=group.name,
        tenant_id=group.tenant_id,
        default=False,
        rules=[rule_view(rule) for rule in group.rules],
    )


def default_group_view(tenant_id: str) -> SecurityGroupView:
    group_id = default_security_group_id(tenant_id)
    rules = [rule_view(rule_record(r)) for r in default_security_group_rules(group_id)]
    return SecurityGroupView(
        id=group_id,
        name=DEFAULT_SECURITY_GROUP_NAME,
        tenant_id=tenant_id,
        default=True,
        rules=rules,
    )
