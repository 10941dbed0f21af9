"""The projection's records of the security groups tenants created (defaults are implicit)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec


class RuleRecord(msgspec.Struct, frozen=True, kw_only=True):
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: Literal["any", "tcp", "udp", "icmp", "icmpv6"]
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group: str | None = None


class SecurityGroup(msgspec.Struct, kw_only=True):
    id: str
    tenant_id: str
    name: str
    rules: list[RuleRecord]
    created_at: datetime
