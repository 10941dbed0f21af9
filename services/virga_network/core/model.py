"""What the network controller knows, folded from the log: networks, ports, and who holds
which VXLAN id, MAC and address.

Each id, MAC and address keeps the list of its holders and is free only when that list is
empty (see `fold` for why a list).
"""

from __future__ import annotations

import functools

import msgspec

from virga_ipam import Subnet, parse_subnet


class NetworkRecord(msgspec.Struct, kw_only=True):
    """One network; a stub until its NetworkCreated is folded (its ports may come first)."""

    network_id: str
    tenant_id: str | None = None
    created: bool = False
    name: str = ""
    cidr: str = ""
    vni: int = 0
    pools: list[tuple[int, int]] = msgspec.field(default_factory=list)
    """Inclusive offset ranges addresses are handed out from."""
    used: dict[int, list[str]] = msgspec.field(default_factory=dict)
    """Offset -> the ports holding it (one, except transiently while rebuilding)."""
    high_water: int = -1
    """The highest offset ever handed out on this network."""
    in_use_below: int = 0
    """Every pool offset below it is in use: where the search for a freed address starts.
    Its value depends on the fold order, but decisions do not (see `ipam.next_free`)."""
    early_ips: list[str] = msgspec.field(default_factory=list)
    """Addresses of ports folded before the network (a rebuild), deleted ones included: the
    high-water mark counts them once the CIDR is known."""
    ports: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of its live ports (an ordered set)."""
    held: dict[str, str] = msgspec.field(default_factory=dict)
    """Holders of an address that are not ports (routers' SNAT ports, `l3.snat_port_id`) ->
    the address (claimed in `used` once created)."""


class PortRecord(msgspec.Struct, kw_only=True):
    """One allocated port."""

    port_id: str
    tenant_id: str | None
    network_id: str
    mac: str
    ips: list[str]
    security_groups: list[str]
    instance_id: str | None = None
    host: str | None = None
    """The host it was last assigned to (PortHostAssigned)."""


class Placement(msgspec.Struct, frozen=True):
    attempt: int
    host: str


class ExternalNetworkRecord(msgspec.Struct, kw_only=True):
    """One external network; a stub until its ExternalNetworkCreated is folded."""

    external_network_id: str
    created: bool = False
    cidr: str = ""
    pools: list[tuple[int, int]] = msgspec.field(default_factory=list)
    used: dict[int, list[str]] = msgspec.field(default_factory=dict)
    """Offset -> the floating IPs and routers holding it (one, except while rebuilding)."""
    high_water: int = -1
    in_use_below: int = 0
    holders: dict[str, str] = msgspec.field(default_factory=dict)
    """Floating IP or router id -> the address it holds (claimed in `used` once created)."""
    early_ips: list[str] = msgspec.field(default_factory=list)
    """Addresses held before the network was folded (a rebuild), released ones included: the
    high-water mark counts them once the CIDR is known."""


class FloatingIpRecord(msgspec.Struct, kw_only=True):
    floating_ip_id: str
    tenant_id: str | None
    external_network_id: str
    ip: str
    port_id: str | None = None


class RouterRecord(msgspec.Struct, kw_only=True):
    router_id: str
    tenant_id: str | None
    external_network_id: str
    external_ip: str
    networks: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of the networks attached to it (an ordered set)."""
    snat: dict[str, tuple[str, str]] = msgspec.field(default_factory=dict)
    """Network id -> (MAC, address) of its SNAT port there, if it has one."""


class NetworkState(msgspec.Struct, kw_only=True):
    networks: dict[str, NetworkRecord] = msgspec.field(default_factory=dict)
    ports: dict[str, PortRecord] = msgspec.field(default_factory=dict)
    vnis: dict[int, list[str]] = msgspec.field(default_factory=dict)
    """VXLAN id -> the networks holding it."""
    macs: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """MAC -> the ports holding it."""
    security_groups: dict[str, str | None] = msgspec.field(default_factory=dict)
    """Security group id -> its tenant (the default groups are implicit, see the catalog)."""
    placements: dict[str, Placement] = msgspec.field(default_factory=dict)
    """Instance id -> its newest placement, for its port's host."""
    deleted_networks: dict[str, None] = msgspec.field(default_factory=dict)
    deleted_ports: dict[str, None] = msgspec.field(default_factory=dict)
    deleted_instances: dict[str, None] = msgspec.field(default_factory=dict)
    refused: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of networks and ports whose creation failed: their request decides nothing again."""
    external_networks: dict[str, ExternalNetworkRecord] = msgspec.field(default_factory=dict)
    floating_ips: dict[str, FloatingIpRecord] = msgspec.field(default_factory=dict)
    routers: dict[str, RouterRecord] = msgspec.field(default_factory=dict)
    port_floating_ips: dict[str, list[str]] = msgspec.field(default_factory=dict)
    """Port id -> the floating IPs pointing at it (one, except transiently while rebuilding)."""
    network_routers: dict[str, str] = msgspec.field(default_factory=dict)
    """Network id -> the router it is attached to (at most one)."""
    gone: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of deleted external networks, released floating IPs and deleted routers (bounded):
    their requests decide nothing again. Refused ones are in `refused`."""


@functools.lru_cache(maxsize=4096)
def subnet_of(cidr: str) -> Subnet:
    """The parsed subnet of a CIDR the log holds (cached: ports of a network share it)."""
    return parse_subnet(cidr)
