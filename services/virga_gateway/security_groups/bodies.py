"""Request bodies of security groups, with the constraints msgspec checks; the rules that need
the projection are in `security_groups.commands`."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.networks.bodies import Cidr
from virga_gateway.validation import Body, Name, Reference

PortNumber = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class RuleBody(Body):
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: Literal["any", "tcp", "udp", "icmp", "icmpv6"] = "any"
    port_min: PortNumber | None = None
    """tcp/udp only: first destination port; with port_max unset, only this port."""
    port_max: PortNumber | None = None
    remote_cidr: Cidr | None = None
    """Peers' addresses (any host bits); unset with remote_group unset: any peer."""
    remote_group: Reference | None = None
    """Peers are the ports of this security group of the same tenant."""


class CreateSecurityGroup(Body):
    name: Name
    rules: Annotated[list[RuleBody], msgspec.Meta(max_length=100)] = []
    """Allow rules; what no rule allows is dropped."""
    tenant_id: Reference | None = None
    """Required when an admin creates a security group: the tenant that will own it."""
