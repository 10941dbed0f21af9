"""Routed east-west across hosts (Neutron's DVR): the source host routes.

A host that plumbs a router (`l3.routers`: it has a port on one of the router's networks)
has a leg on *every* network of the router, and that network's bridge and tunnel with it, so
what its guests send to another of the router's networks is routed on their own host and
crosses the tunnel already routed, to the host of the port it is for; the answer is routed
by that host's router in turn. Three things keep it safe:

* What a router sends onto a tunnel leaves with a MAC of its host (`routed_mac`: the bridge
  table rewrites the source, `FilterSet.routed`), never the router's MAC, which every host's
  leg shares: no bridge ever learns one MAC behind two places.
* The router never asks across the tunnel (ARP, neighbour discovery): the log says where each
  port is, so the network's ports on other hosts are its permanent neighbours (`neighbours`).
* A host's tunnel lets a router's routed frames in from the VTEP of the host they were routed
  on only, as IP packets from that host's ports on the router's other networks
  (`routed_remotes`): no ARP, no neighbour discovery, no other source.

Pure: the agent's state in, values out.
"""

from __future__ import annotations

import hashlib
import ipaddress

from virga_network.agent.core.model import NetworkAgentState, RouterRecord
from virga_network.agent.core.plumbing import RemotePort


def routed_mac(router_id: str, network_id: str, host: str) -> str:
    """The source MAC of what `host`'s router sends onto the network's tunnel: its own per
    host, locally administered."""
    digest = hashlib.sha256(f"routed/{router_id}/{network_id}/{host}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0E, *digest[:5]))


def plumbed(state: NetworkAgentState, router: RouterRecord) -> bool:
    """Whether hosts plumb the router at all (its external network and address known)."""
    return router.external_network_id in state.externals and bool(router.external_ip)


def neighbours(
    state: NetworkAgentState, network_id: str, version: int
) -> tuple[tuple[str, str], ...]:
    """(address, MAC) of the network's ports bound on other hosts, of one IP version."""
    return tuple(
        sorted(
            (ip, port.mac)
            for port in state.ports.values()
            if port.network_id == network_id and port.mac is not None
            and (host := port.bound_host) is not None and host != state.host
            for ip in port.ips
            if ipaddress.ip_address(ip).version == version
        )
    )  # fmt: skip


def routed_remotes(state: NetworkAgentState, network_id: str) -> tuple[RemotePort, ...]:
    """What the network's tunnel carries here from other hosts' routers: per router of the
    network and other host, its routed MAC with that host's ports' addresses on the router's
    other networks."""
    remotes: list[RemotePort] = []
    for router_id, router in sorted(state.routers.items()):
        if network_id not in router.networks or not plumbed(state, router):
            continue
        others = set(router.networks) - {network_id}
        addresses: dict[str, set[str]] = {}
        for port in state.ports.values():
            host = port.bound_host
            if port.network_id in others and host is not None and host != state.host:
                addresses.setdefault(host, set()).update(port.ips)
        remotes += [
            RemotePort(
                mac=routed_mac(router_id, network_id, host),
                vtep=vtep,
                ips=tuple(sorted(ips)),
                forwarded=True,
            )
            for host, ips in sorted(addresses.items())
            if ips and (vtep := state.vteps.get(host)) is not None
        ]
    return tuple(remotes)
