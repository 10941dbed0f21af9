"""The network driver contract: what the agent asks of a host's plumbing, and its value types.

Every method is idempotent ("already so" is done) and touches only interfaces and filters
Virga named (see `names`). A failing call raises `DriverError` and leaves whatever it made
in place; the agent's next convergence removes what is not wanted, so nothing is left behind
for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from virga_events.catalog.network import Direction, IpProtocol

TapKind = Literal["tap", "veth"]
"""`tap`: a persistent tap device QEMU opens (managed='no'); `veth`: a veth pair whose host
end carries the tap's name and whose guest end (`names.veth_peer`) is left in the host's
namespace for whoever plugs the guest in (tests move it into a guest namespace)."""


class DriverError(Exception):
    """A plumbing operation failed; the message says which and why."""


@dataclass(frozen=True, slots=True)
class NetworkPlumbing:
    """A network as one host needs it: a bridge and a VXLAN port towards the other hosts."""

    network_id: str
    vni: int
    bridge: str
    vxlan: str
    flood: tuple[str, ...] = ()
    """Remote VTEPs that receive broadcast and unknown unicast (head-end replication)."""
    fdb: tuple[tuple[str, str], ...] = ()
    """(MAC, VTEP) of the remote ports: unicast goes straight to their host."""

    def forwarding(self) -> frozenset[tuple[str, str]]:
        """The VXLAN forwarding entries this network needs, flood entries included."""
        return frozenset({("00:00:00:00:00:00", vtep) for vtep in self.flood} | set(self.fdb))


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One security group rule with its remote group resolved to addresses."""

    direction: Direction
    ethertype: Literal["IPv4", "IPv6"] = "IPv4"
    protocol: IpProtocol = "any"
    port_min: int | None = None
    port_max: int | None = None
    remote: tuple[str, ...] | None = None
    """Peer CIDRs/addresses; None: any peer; (): nobody (a group without ports)."""


@dataclass(frozen=True, slots=True)
class PortFilter:
    """What one port may send (anti-spoofing) and what its security groups let through."""

    tap: str
    mac: str
    ips: tuple[str, ...]
    zone: int
    """Conntrack zone of the port's network, so overlapping CIDRs never share a flow."""
    rules: tuple[FilterRule, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterSet:
    """Every filter of the host, replaced as a whole and atomically."""

    ports: tuple[PortFilter, ...] = ()
    uplinks: tuple[tuple[str, int], ...] = ()
    """(VXLAN interface, zone): traffic from other hosts, tracked in its network's zone."""


@dataclass(frozen=True, slots=True)
class HostInventory:
    """What Virga-named plumbing exists on the host."""

    bridges: frozenset[str] = frozenset()
    vxlans: frozenset[str] = frozenset()
    taps: frozenset[str] = frozenset()
    filtered: frozenset[str] = frozenset()
    """Taps that have filters installed."""
    ports_of: dict[str, frozenset[str]] = field(default_factory=dict)
    """Bridge -> the Virga interfaces attached to it."""


class NetworkDriver(Protocol):
    """Host plumbing for the ports bound on one host."""

    async def prepare(self) -> None:
        """Check and set what the host needs once (tools, sysctls); raise DriverError if the
        host cannot filter bridged traffic."""

    async def ensure_network(self, network: NetworkPlumbing, vtep_ip: str) -> None:
        """Make the bridge and its VXLAN port (id `vni`, source `vtep_ip`, UDP 4789, no
        learning, no multicast) exist and be up, with exactly `network.forwarding()` as the
        VXLAN's remote entries. A VXLAN interface of that name with another id is replaced."""

    async def ensure_port(self, tap: str, bridge: str, *, kind: TapKind | None = None) -> None:
        """Make the port's tap exist, be attached to `bridge` (which must exist) and be up;
        `kind` None: the driver's configured kind."""

    async def apply_filters(self, filters: FilterSet) -> None:
        """Replace every Virga filter on the host with `filters`, atomically."""

    async def remove_port(self, tap: str) -> None:
        """Remove the tap (and its veth peer); absent is done. Its filters go with the next
        `apply_filters`."""

    async def remove_network(self, bridge: str, vxlan: str) -> None:
        """Remove the VXLAN interface and the bridge; absent is done."""

    async def inventory(self) -> HostInventory:
        """List the Virga-named bridges, VXLAN interfaces, taps and filtered taps."""

    async def forwarding(self, vxlan: str) -> frozenset[tuple[str, str]]:
        """The VXLAN interface's remote (MAC, VTEP) entries; empty if it does not exist."""

    async def close(self) -> None:
        """Release the driver's resources (netlink sockets)."""
