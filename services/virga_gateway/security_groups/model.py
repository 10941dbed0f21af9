"""The projection's records of the security groups tenants created (defaults are implicit)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_events.catalog.network import SecurityGroupRule


class RuleRecord(msgspec.Struct, frozen=True, kw_only=True):
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: Literal["any", "tcp", "udp", "icmp", "icmpv6"]
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group: str | None = None
    id: str = ""
    """"" only in snapshots from before rules had ids (the fold then gives them theirs)."""


def rule_record(rule: SecurityGroupRule) -> RuleRecord:
    return RuleRecord(
        direction=rule.direction,
        ethertype=rule.ethertype,
        protocol=rule.protocol,
        port_min=rule.port_min,
        port_max=rule.port_max,
        remote_cidr=rule.remote_cidr,
        remote_group=rule.remote_group,
        id=rule.id,
    )


def rule_of(record: RuleRecord) -> SecurityGroupRule:
    return SecurityGroupRule(
        direction=record.direction,
        ethertype=record.ethertype,
        protocol=record.protocol,
        port_min=record.port_min,
        port_max=record.port_max,
        remote_cidr=record.remote_cidr,
        remote_group=record.remote_group,
        id=record.id,
    )


class SecurityGroup(msgspec.Struct, kw_only=True):
    id: str
    tenant_id: str
    name: str
    rules: list[RuleRecord]
    created_at: datetime
