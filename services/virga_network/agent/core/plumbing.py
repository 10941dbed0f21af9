"""The plumbing a host is to have, as values: what the plan computes and a driver makes.

Pure data (frozen dataclasses), shared by the plan, the nftables rules, the effects and the
drivers; the driver contract itself is `virga_network.agent.drivers.base`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from virga_events.catalog.network import Direction, IpProtocol

VXLAN_PORT = 4789
"""The UDP port of every VXLAN interface the agent makes (IANA's)."""


def zone(vni: int) -> int:
    """A network's conntrack zone (16 bits, never the default zone 0). The controller hands
    out VXLAN ids from the lowest free one, so ids below 65,535 apart never share a zone."""
    return vni % 0xFFFF + 1


TapKind = Literal["tap", "veth"]
"""`tap`: a persistent tap device QEMU opens (managed='no'); `veth`: a veth pair whose host
end carries the tap's name and whose guest end (`names.veth_peer`) is left in the host's
namespace for whoever plugs the guest in (tests move it into a guest namespace)."""


@dataclass(frozen=True, slots=True)
class RemotePort:
    """A port the log places on another host of the network: what may come out of the tunnel."""

    mac: str
    vtep: str
    """The VTEP of the host it is bound on: the only one its frames may come from."""
    ips: tuple[str, ...] = ()
    routed: bool = False
    """A router's SNAT port: its IPv4 frames may carry any source address (it routes the
    external network's replies); its ARP only its own addresses."""
    forwarded: bool = False
    """A router's frames routed into the network on another host (`dvr.routed_mac`): IP
    packets from `ips` only (the other host's ports on the router's other networks), no ARP
    or neighbour discovery (each router knows its neighbours from the log)."""


@dataclass(frozen=True, slots=True)
class EdgePlumbing:
    """A network's edge on this host (`core.edge`): a namespace with 169.254.169.254, plugged
    into the bridge by a veth, that knows the local ports' MACs without asking (ARP)."""

    namespace: str
    veth: str
    """The host end, on the bridge; the namespace's end is `names.veth_peer(veth)`."""
    cidr: str
    """Routed on-link from the namespace: the answers' way back to the guests."""
    neighbours: tuple[tuple[str, str], ...] = ()
    """(IPv4, MAC) of this host's ports on the network: permanent neighbour entries."""
    router: str | None = None
    """IPv6: the link-local address of the router attached to the network whose leg is on
    this host; the edge's advertisements then name it the default router. None: none."""


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
    remotes: tuple[RemotePort, ...] = ()
    """The remote ports with their addresses: the tunnel's anti-spoofing (filters only)."""
    edge: EdgePlumbing | None = None
    """Its edge (DHCP, metadata) here; None: none (IPv6, or the edge is switched off)."""

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
class TunnelFilter:
    """What a network's VXLAN interface may let in: frames of its remote ports only, each
    from the VTEP of the host it is bound on (UDP from elsewhere is dropped before the
    kernel decapsulates it; frames not of a remote port before the bridge sees them)."""

    vxlan: str
    vni: int
    remotes: tuple[RemotePort, ...] = ()


@dataclass(frozen=True, slots=True)
class FilterSet:
    """Every filter of the host, replaced as a whole and atomically."""

    ports: tuple[PortFilter, ...] = ()
    uplinks: tuple[tuple[str, int], ...] = ()
    """(VXLAN interface or edge veth, zone): traffic from other hosts or from the network's
    edge, tracked in its network's zone."""
    tunnels: tuple[TunnelFilter, ...] = ()
    """Per VXLAN interface, the remote ports it may carry; a Virga VXLAN interface without
    one lets nothing in."""
    routed: tuple[tuple[str, str], ...] = ()
    """(router leg on a bridge, this host's MAC for it): what the leg sends onto the
    network's tunnel leaves with that source MAC, never the router's shared one."""


@dataclass(frozen=True, slots=True)
class SnatLeg:
    """On the router's SNAT host, its SNAT port on a network: a second veth from the bridge,
    with the port's own MAC and address, where the other hosts send what their guests without
    a floating IP send outside; it leaves SNATed to the router's address, and the answers go
    back by this leg (never with the gateway MAC, which stays on each host)."""

    veth: str
    mac: str
    address: str
    """The SNAT port's address with the network's prefix length (no route of its own)."""
    table: int
    """The routing table of the answers (the network on this leg)."""


@dataclass(frozen=True, slots=True)
class Redirect:
    """On the router's other hosts, the way to its SNAT port on a network: a veth from the
    bridge with a MAC of this host (`l3.redirect_mac`) and no address, the guests' external
    traffic without a floating IP routed by it to the SNAT port's address and MAC."""

    veth: str
    mac: str
    snat_ip: str
    snat_mac: str
    table: int
    """The routing table the redirected traffic takes (its default route: the SNAT port)."""


@dataclass(frozen=True, slots=True)
class RouterInterface:
    """A router's leg on one of its networks: a veth from the network's bridge into the
    router's namespace, answering the network's gateway address with the same MAC on every
    host (a host's router never answers another host's guests: the tunnel lets in only
    frames of the remote ports)."""

    network_id: str
    bridge: str
    veth: str
    """The host end, on the bridge; the namespace's end is `names.veth_peer(veth)`."""
    mac: str
    address: str
    """The gateway address with the network's prefix length (10.0.0.1/24, fd00:a::1/64)."""
    cidr: str
    zone: int
    """The network's conntrack zone on the host (the veth is one of its uplinks)."""
    link_local: str = ""
    """IPv6 legs: the router's link-local address (EUI-64 of `mac`), the guests' default
    router (the edge's advertisements name it); "" on IPv4 legs."""
    snat: SnatLeg | None = None
    """Its SNAT port, on the router's SNAT host."""
    redirect: Redirect | None = None
    """The way to its SNAT port, on the router's other hosts."""
    routed_mac: str = ""
    """This host's MAC for what the router sends onto the network's tunnel (`dvr`): routed
    east-west, the source host routes, and each host's router has its own MAC there."""
    neighbours: tuple[tuple[str, str], ...] = ()
    """(address, MAC) of the network's ports on other hosts: permanent neighbours, so the
    router never asks across the tunnel."""

    def veths(self) -> tuple[str, ...]:
        """The host ends of the leg's veths on the bridge (uplinks of the network)."""
        extra = self.snat or self.redirect
        return (self.veth,) if extra is None else (self.veth, extra.veth)


@dataclass(frozen=True, slots=True)
class FloatingNat:
    """1:1 NAT of a floating IP to the fixed address of a port on this host."""

    floating_ip: str
    fixed_ip: str


@dataclass(frozen=True, slots=True)
class RouterPlumbing:
    """One router on this host (`core.l3`): a namespace routing its networks to the external
    network, with its floating IPs' 1:1 NAT and, on its SNAT host, the router's SNAT."""

    router_id: str
    namespace: str
    host_interface: str
    """Where the external network is on this host (a bridge: a veth on it; else a macvlan)."""
    veth: str
    """The external leg's host end; the namespace's end is `names.veth_peer(veth)`."""
    external_cidr: str
    external_gateway: str
    snat_ip: str | None
    """The router's own external address if this host is its SNAT host, else None."""
    interfaces: tuple[RouterInterface, ...]
    floating: tuple[FloatingNat, ...] = ()

    def external_addresses(self) -> tuple[str, ...]:
        """What the external leg answers (ARP, ping): the SNAT address, the floating IPs."""
        prefix = self.external_cidr.split("/")[1]
        own = (f"{self.snat_ip}/{prefix}",) if self.snat_ip is not None else ()
        return own + tuple(f"{f.floating_ip}/32" for f in self.floating)
