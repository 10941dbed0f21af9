"""Request bodies of external networks; the subnet rules are `virga_ipam`'s, checked in
`external_networks.commands`."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.networks.bodies import Address, Cidr, PoolBody
from virga_gateway.validation import Body, Name

InterfaceName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=15,
        description="A Linux interface or bridge on every host (1-15 of A-Za-z0-9_.-).",
    ),
]


class CreateExternalNetwork(Body):
    name: Name
    cidr: Cidr
    gateway_ip: Address
    """The upstream router on the segment: inside the CIDR, outside every pool."""
    host_interface: InterfaceName
    allocation_pools: Annotated[list[PoolBody], msgspec.Meta(max_length=16)] = []
    """Ranges floating IPs and routers' addresses come from; none: the whole subnet but the
    reserved addresses and the gateway."""
