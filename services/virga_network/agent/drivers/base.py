"""The network driver contract: what the agent asks of a host's plumbing, and its errors (the
values it is given are in `virga_network.agent.core.plumbing`).

Every method is idempotent ("already so" is done) and touches only interfaces and filters
Virga named (see `names`). A failing call raises `DriverError` and leaves whatever it made
in place; the agent's next convergence removes what is not wanted, so nothing is left behind
for good.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Protocol

from virga_network.agent.core.plumbing import FilterSet, NetworkPlumbing, RouterPlumbing, TapKind


class DriverError(Exception):
    """A plumbing operation failed; the message says which and why."""


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
    edges: frozenset[str] = frozenset()
    """Networks' edges that exist (`core.edge`), by the name of their veth's host end."""
    routers: frozenset[str] = frozenset()
    """Routers that exist on the host (`core.l3`), by their namespace's name."""


@dataclass(frozen=True, slots=True)
class EdgeSockets:
    """The sockets of one edge (`core.edge`), opened inside its namespace."""

    dhcp: socket.socket
    """UDP 67 (IPv4) or 547, in the all-DHCP-servers group (IPv6)."""
    http: socket.socket | None = None
    """TCP 169.254.169.254:80, listening (IPv4 networks)."""
    icmp6: socket.socket | None = None
    """Raw ICMPv6 for router solicitations and advertisements (IPv6 networks)."""
    ifindex: int = 0
    """The edge's interface inside its namespace."""


class NetworkDriver(Protocol):
    """Host plumbing for the ports bound on one host."""

    async def prepare(self) -> None:
        """Check and set what the host needs once (tools, sysctls); raise DriverError if the
        host cannot filter bridged traffic."""

    async def ensure_network(self, network: NetworkPlumbing, vtep_ip: str) -> None:
        """Make the bridge and its VXLAN port (id `vni`, source `vtep_ip`, UDP 4789, no
        learning, no multicast) exist and be up, with exactly `network.forwarding()` as the
        VXLAN's remote entries. A VXLAN interface of that name with another id is replaced.
        With `network.edge`, also its edge: the namespace, its veth on the bridge, the
        edge's address, the route to the network and exactly its neighbour entries."""

    async def ensure_port(self, tap: str, bridge: str, *, kind: TapKind | None = None) -> None:
        """Make the port's tap exist, be attached to `bridge` (which must exist) and be up;
        `kind` None: the driver's configured kind."""

    async def apply_filters(self, filters: FilterSet) -> None:
        """Replace every Virga filter on the host with `filters`, atomically."""

    async def remove_port(self, tap: str) -> None:
        """Remove the tap (and its veth peer); absent is done. Its filters go with the next
        `apply_filters`."""

    async def remove_network(self, bridge: str, vxlan: str) -> None:
        """Remove the VXLAN interface, the bridge and the network's edge; absent is done."""

    async def ensure_router(self, router: RouterPlumbing) -> None:
        """Make the router exist exactly as `router` says (`core.l3`): its namespace, its legs
        on the networks' bridges (which must exist) and on the external network, the external
        leg's addresses, and its NAT (changed element by element when this driver made the
        previous one); a gratuitous ARP for each address it starts answering."""

    async def remove_router(self, namespace: str) -> None:
        """Remove the router's namespace with all it holds; absent is done."""

    async def inventory(self) -> HostInventory:
        """List the Virga-named bridges, VXLAN interfaces, taps, filtered taps, edges and
        routers."""

    async def guest_frames(self, tap: str) -> int:
        """How many frames the tap's guest sent into the host (the tap's receive count): a
        guest that runs there sends some; 0 if the tap does not exist."""

    async def forwarding(self, vxlan: str) -> frozenset[tuple[str, str]]:
        """The VXLAN interface's remote (MAC, VTEP) entries; empty if it does not exist."""

    async def close(self) -> None:
        """Release the driver's resources (netlink sockets)."""
