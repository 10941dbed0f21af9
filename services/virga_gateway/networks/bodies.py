"""Request bodies of networks, with the constraints msgspec checks; the rules that need the
subnet or the projection are in `networks.commands`."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.validation import Body, Name, Reference

Address = Annotated[str, msgspec.Meta(min_length=2, max_length=45, description="An IP address.")]
Cidr = Annotated[
    str,
    msgspec.Meta(
        min_length=1,  # what is not a subnet is said by `networks.commands`, in words
        max_length=49,
        description="address/prefix, host bits clear: IPv4 /8 to /29, IPv6 /64 to /124.",
    ),
]


class PoolBody(Body):
    start: Address
    end: Address


class CreateNetwork(Body):
    name: Name
    cidr: Cidr
    allocation_pools: Annotated[list[PoolBody], msgspec.Meta(max_length=16)] = []
    """Ranges addresses are handed out from; none: the whole subnet but the reserved ones."""
    dhcp: Annotated[
        bool,
        msgspec.Meta(
            description="The network's edges answer its guests' DHCP (DHCPv6); false: guests"
            " configure themselves statically (a config drive), metadata still answers them."
        ),
    ] = True
    """OpenStack's subnet `enable_dhcp`."""
    tenant_id: Reference | None = None
    """Required when an admin creates a network: the tenant that will own it."""
