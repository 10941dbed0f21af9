"""Subnet rules the gateway and the network controller share: valid CIDRs, reserved addresses
and allocation pools, all as offsets from the network address.

Offsets keep IPv4 and IPv6 alike and small enough for JSON: an IPv6 subnet is at most a /64,
so every offset fits in 64 bits. Nothing here enumerates a subnet: a /64 has 2**64 addresses.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass

IPV4_PREFIXES = range(8, 30)
"""/8 to /29: larger is absurd for one tenant network, smaller leaves no room for ports."""
IPV6_PREFIXES = range(64, 125)
"""/64 (what SLAAC and every operator expects) to /124."""

Pool = tuple[int, int]
"""An inclusive range of offsets from the network address."""


class SubnetError(ValueError):
    """A CIDR or allocation pool that cannot be used; `field` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Subnet:
    """One network's subnet: offset 0 is the network address, 1 the gateway and, in IPv4,
    the last offset the broadcast address; these three are never handed out."""

    network: ipaddress.IPv4Network | ipaddress.IPv6Network

    @property
    def version(self) -> int:
        return self.network.version

    @property
    def size(self) -> int:
        return self.network.num_addresses

    @property
    def gateway_offset(self) -> int:
        return 1

    @property
    def gateway_ip(self) -> str:
        return self.address(self.gateway_offset)

    def address(self, offset: int) -> str:
        return str(self.network.network_address + offset)

    def offset(self, ip: str, field: str = "ip") -> int:
        """The offset of `ip` in the subnet; SubnetError naming `field` if it is not in it."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            raise SubnetError(field, f"{ip!r} is not an IP address") from None
        if address.version != self.version or address not in self.network:
            raise SubnetError(field, f"{ip} is not in {self.network}")
        return int(address) - int(self.network.network_address)

    def reserved(self, offset: int) -> bool:
        last = self.size - 1
        return offset in (0, self.gateway_offset) or (self.version == 4 and offset == last)

    def default_pools(self) -> tuple[Pool, ...]:
        """Every address but the reserved ones."""
        return ((2, self.size - 2 if self.version == 4 else self.size - 1),)

    def pools(self, given: Sequence[tuple[str, str]]) -> tuple[Pool, ...]:
        """`given` (start, end) pairs as sorted offset pools, or the default pools if none.

        SubnetError names `allocation_pools[i]...` for a pool outside the subnet, reversed,
        holding a reserved address, or overlapping another.
        """
        if not given:
            return self.default_pools()
        pools: list[tuple[int, int, int]] = []
        for index, (start, end) in enumerate(given):
            field = f"allocation_pools[{index}]"
            low = self.offset(start, f"{field}.start")
            high = self.offset(end, f"{field}.end")
            if low > high:
                raise SubnetError(f"{field}.end", f"{end} is before the start {start}")
            for offset in (0, self.gateway_offset, self.size - 1):
                if low <= offset <= high and self.reserved(offset):
                    what = self.address(offset)
                    raise SubnetError(field, f"holds {what}, reserved (network/gateway/broadcast)")
            pools.append((low, high, index))
        pools.sort()
        for (_, high, _), (low, _, index) in itertools.pairwise(pools):
            if low <= high:
                raise SubnetError(f"allocation_pools[{index}]", "overlaps another pool")
        return tuple((low, high) for low, high, _ in pools)


def pool_size(pools: Sequence[Pool]) -> int:
    return sum(high - low + 1 for low, high in pools)


def parse_subnet(cidr: str, field: str = "cidr") -> Subnet:
    """`cidr` as a Subnet; SubnetError naming `field` if it is malformed, has host bits set,
    or has a prefix length outside IPV4_PREFIXES / IPV6_PREFIXES."""
    if "/" not in cidr:
        raise SubnetError(field, f"{cidr!r} is not a CIDR (address/prefix length)")
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise SubnetError(field, f"{cidr!r} is not a CIDR: {exc}") from None
    if int(ipaddress.ip_address(cidr.split("/", 1)[0])) != int(network.network_address):
        raise SubnetError(field, f"{cidr} has host bits set; the network is {network}")
    allowed = IPV4_PREFIXES if network.version == 4 else IPV6_PREFIXES
    if network.prefixlen not in allowed:
        raise SubnetError(
            field,
            f"IPv{network.version} prefix length must be /{allowed.start} to"
            f" /{allowed.stop - 1}, not /{network.prefixlen}",
        )
    return Subnet(network)


INTERFACE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
"""What Linux takes as an interface name: 1 to 15 bytes, no '/', ':' or whitespace."""


def check_interface_name(name: str, field: str = "host_interface") -> str:
    """`name` if Linux accepts it as an interface name (`dev_valid_name`); SubnetError if not."""
    if not INTERFACE_NAME.match(name) or name in (".", ".."):
        raise SubnetError(field, f"{name!r} is not a Linux interface name (1-15 of A-Za-z0-9_.-)")
    return name


def external_pools(
    subnet: Subnet, gateway_ip: str, given: Sequence[tuple[str, str]]
) -> tuple[int, tuple[Pool, ...]]:
    """An external network's gateway offset and pools: the gateway inside the subnet and
    outside every pool, the pools inside it and apart (`Subnet.pools`'s rules, offset 1
    reserved too). None given: every address but the reserved ones and the gateway."""
    gateway = subnet.offset(gateway_ip, "gateway_ip")
    if gateway == 0 or (subnet.version == 4 and gateway == subnet.size - 1):
        raise SubnetError("gateway_ip", f"{gateway_ip} is the network or broadcast address")
    if given:
        pools = subnet.pools(given)
    else:
        pools = tuple(
            (low, high)
            for pool_low, pool_high in subnet.default_pools()
            for low, high in ((pool_low, gateway - 1), (gateway + 1, pool_high))
            if low <= high
        )
    for index, (low, high) in enumerate(pools):
        if low <= gateway <= high:
            raise SubnetError("gateway_ip", f"{gateway_ip} is inside allocation pool {index}")
    if not pools:
        raise SubnetError("allocation_pools", "no address is left to hand out")
    return gateway, pools
