"""Request bodies of networks, ports and security groups, with the constraints msgspec checks;
the rules that need the subnet or the projection are in `network_commands`."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Name, Reference

Address = Annotated[str, msgspec.Meta(min_length=2, max_length=45, description="An IP address.")]
Cidr = Annotated[
    str,
    msgspec.Meta(
        min_length=9,
        max_length=49,
        description="address/prefix, host bits clear: IPv4 /8 to /29, IPv6 /64 to /124.",
    ),
]
PortNumber = Annotated[int, msgspec.Meta(ge=1, le=65535)]
PortName = Annotated[str, msgspec.Meta(max_length=63, pattern=r"^[A-Za-z0-9._-]*$")]


class _Body(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Bodies refuse fields they do not know: a typo must not be silently ignored."""


class PoolBody(_Body):
    start: Address
    end: Address


class CreateNetwork(_Body):
    name: Name
    cidr: Cidr
    allocation_pools: Annotated[list[PoolBody], msgspec.Meta(max_length=16)] = []
    """Ranges addresses are handed out from; none: the whole subnet but the reserved ones."""
    tenant_id: Reference | None = None
    """Required when an admin creates a network: the tenant that will own it."""


class CreatePort(_Body):
    network_id: Reference
    name: PortName = ""
    security_groups: Annotated[list[Reference], msgspec.Meta(max_length=16)] = []
    """Ids of the tenant's security groups; none: the tenant's default group."""
    host: Reference | None = None
    """Admins only: plug the port in on this host at once."""
    tenant_id: Reference | None = None
    """Required when an admin creates a port: the tenant that will own it."""


class RuleBody(_Body):
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


class CreateSecurityGroup(_Body):
    name: Name
    rules: Annotated[list[RuleBody], msgspec.Meta(max_length=100)] = []
    """Allow rules; what no rule allows is dropped."""
    tenant_id: Reference | None = None
    """Required when an admin creates a security group: the tenant that will own it."""
