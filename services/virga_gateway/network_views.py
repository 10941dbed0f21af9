"""Response bodies of networks, ports and security groups, built from the projection."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_events.catalog.network import (
    DEFAULT_SECURITY_GROUP_NAME,
    default_security_group_id,
    default_security_group_rules,
)
from virga_gateway.network_model import (
    Network,
    NetworkStatus,
    Port,
    PortStatus,
    RuleRecord,
    SecurityGroup,
)


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class PoolView(_View):
    start: str
    end: str


class NetworkView(_View):
    id: str
    name: str
    tenant_id: str
    cidr: str
    ip_version: Literal[4, 6]
    status: NetworkStatus
    """BUILDING until the controller gives it a VXLAN id; DELETING while a deletion is pending."""
    fault: str | None
    """Why the controller refused to create it (ERROR), or to delete it."""
    vni: int | None
    """Its VXLAN id, once created."""
    gateway_ip: str | None
    allocation_pools: list[PoolView]
    ports: list[str]
    """Ids of its ports (those being created included)."""
    created_at: datetime
    updated_at: datetime


class NetworkList(_View):
    items: list[NetworkView]


class PortView(_View):
    id: str
    name: str
    tenant_id: str
    network_id: str
    status: PortStatus
    """BUILDING, DOWN (addresses given, not plugged in), ACTIVE (plugged in on `host`)."""
    fault: str | None
    mac: str | None
    ips: list[str]
    security_groups: list[str]
    instance_id: str | None
    """The instance the port was made for, if any (delete the instance to delete it)."""
    host: str | None
    created_at: datetime
    updated_at: datetime


class PortList(_View):
    items: list[PortView]


class RuleView(_View):
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


def network_view(network: Network) -> NetworkView:
    assert network.created_at is not None, "only requested networks are shown"
    return NetworkView(
        id=network.id,
        name=network.name,
        tenant_id=network.tenant_id,
        cidr=network.cidr,
        ip_version=6 if ":" in network.cidr else 4,
        status=network.status,
        fault=network.fault,
        vni=network.vni,
        gateway_ip=network.gateway_ip,
        allocation_pools=[PoolView(start=p.start, end=p.end) for p in network.allocation_pools],
        ports=list(network.ports),
        created_at=network.created_at,
        updated_at=network.updated_at or network.created_at,
    )


def port_view(port: Port) -> PortView:
    assert port.created_at is not None, "only requested ports are shown"
    return PortView(
        id=port.id,
        name=port.name,
        tenant_id=port.tenant_id,
        network_id=port.network_id,
        status=port.status,
        fault=port.fault,
        mac=port.mac,
        ips=list(port.ips),
        security_groups=list(port.security_groups),
        instance_id=port.instance_id,
        host=port.bound_host or port.host,
        created_at=port.created_at,
        updated_at=port.updated_at or port.created_at,
    )


def _rule_view(rule: RuleRecord) -> RuleView:
    return RuleView(
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
        rules=[_rule_view(rule) for rule in group.rules],
    )


def default_group_view(tenant_id: str) -> SecurityGroupView:
    group_id = default_security_group_id(tenant_id)
    rules = [
        RuleView(
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_min=r.port_min,
            port_max=r.port_max,
            remote_cidr=r.remote_cidr,
            remote_group=r.remote_group,
        )
        for r in default_security_group_rules(group_id)
    ]
    return SecurityGroupView(
        id=group_id,
        name=DEFAULT_SECURITY_GROUP_NAME,
        tenant_id=tenant_id,
        default=True,
        rules=rules,
    )
