"""Routers and floating IPs on this host: which of the log's routers this host plumbs, and how.

Distributed, with no network node: a router is plumbed on every host with a port on one of
its networks, as a namespace of its own (`names.router_namespace`) with a leg on each of its
networks' bridges (the network's gateway address, the same MAC on every host; on every
network, not only those with ports here: the source host routes, `core.dvr`) and a leg on
the external network (through the external network's `host_interface`). Its namespace keeps
the conntrack of its tenant's flows apart from every other router's, so two tenants' equal
CIDRs behind different routers never meet.

* A floating IP pointing at a port on this host is answered (ARP, ping) on this host's
  external leg and mapped 1:1 there: DNAT to the fixed address coming in, SNAT to the
  floating IP going out.
* The port's host reports a floating IP plumbed (`FloatingIpAssociated`) once its NAT and ARP
  answer are in place, and unplumbed (`FloatingIpUnplumbed`) once they are gone again:
  `reports` says which reports are still due, from what the log holds of its own reports, so
  a restart reports nothing twice.
* IPv6 networks are routed too, without NAT: the leg holds the network's IPv6 gateway
  address and the router's link-local address (the EUI-64 of its MAC), which the edge's
  router advertisements name as the default router while the router is attached here. IPv6
  is routed between the router's networks only (no floating IPv6, no way out: the external
  network is IPv4).
* The router's own address is SNAT's source for its networks' other traffic. An address can
  be answered by one host only, so it lives on the router's SNAT host: the first host, by
  name, the log assigns a port of the router's networks to.
* Centralized SNAT (Neutron's DVR): on the SNAT host, the router's SNAT port on each network
  (`SnatLeg`: the port's MAC and address, from `RouterInterfaceAdded`) takes what the other
  hosts' guests without a floating IP send outside; each other host routes that traffic to
  it (`Redirect`) with a MAC of its own (`redirect_mac`), never the gateway MAC. Each side's
  tunnel lets in the other's (`snat_remotes`). The SNAT host has a leg on each of the
  router's networks, ports there or not; an interface without a SNAT port keeps that traffic
  dropped.

Pure: the agent's state and this host's port plans in, `RouterPlumbing` out.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace

from virga_network.agent.core import dvr, names
from virga_network.agent.core.model import NetworkAgentState, RouterRecord
from virga_network.agent.core.nft_text import link_local
from virga_network.agent.core.plumbing import (
    FloatingNat,
    Redirect,
    RemotePort,
    RouterInterface,
    RouterPlumbing,
    SnatLeg,
    zone,
)


def router_mac(router_id: str, network_id: str) -> str:
    """The router's MAC on a network: the same on every host, locally administered."""
    digest = hashlib.sha256(f"router/{router_id}/{network_id}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0E, *digest[:5]))


def redirect_mac(router_id: str, network_id: str, host: str) -> str:
    """The MAC a host's router sends its network's traffic to the SNAT port with: its own per
    host, so the SNAT host's tunnel can tell it (and its addresses) from any other."""
    digest = hashlib.sha256(f"redirect/{router_id}/{network_id}/{host}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0E, *digest[:5]))


def _table(leg_zone: int) -> int:
    """A network's routing table in its router's namespace (clear of local/main/default)."""
    return 0x10000 + leg_zone


def _snat_side(
    state: NetworkAgentState,
    router_id: str,
    router: RouterRecord,
    leg: RouterInterface,
    prefix: str,
) -> RouterInterface:
    """`leg` with its SNAT port (on the SNAT host) or its way there (on the others)."""
    snat_port = router.snat_ports.get(leg.network_id)
    where = snat_host(state, router)
    if snat_port is None or where is None or leg.link_local:
        return leg  # no SNAT port, nor a SNAT host; or IPv6, routed without NAT
    mac, ip = snat_port
    if where == state.host:
        veth = names.router_interface_name(router_id, f"{leg.network_id}/snat", prefix)
        length = leg.address.split("/")[1]
        return replace(leg, snat=SnatLeg(veth, mac, f"{ip}/{length}", _table(leg.zone)))
    veth = names.router_interface_name(router_id, f"{leg.network_id}/redirect", prefix)
    own = redirect_mac(router_id, leg.network_id, state.host)
    return replace(leg, redirect=Redirect(veth, own, ip, mac, _table(leg.zone)))


def snat_remotes(state: NetworkAgentState, network_id: str) -> tuple[RemotePort, ...]:
    """What else the network's tunnel carries here for centralized SNAT: on another host than
    the router's SNAT host, its SNAT port (any IPv4 source: the external network's answers);
    on the SNAT host, each other host's redirect MAC with that host's ports' addresses."""
    for router_id, router in sorted(state.routers.items()):
        snat_port = router.snat_ports.get(network_id)
        if snat_port is None or ":" in snat_port[1]:
            continue  # (an IPv6 network is routed without NAT)
        where = snat_host(state, router)
        if where is None:
            return ()
        if where != state.host:
            vtep = state.vteps.get(where)
            if vtep is None:
                return ()
            return (RemotePort(mac=snat_port[0], vtep=vtep, ips=(snat_port[1],), routed=True),)
        addresses: dict[str, set[str]] = {}
        for port in state.ports.values():
            host = port.bound_host
            if port.network_id == network_id and host is not None and host != state.host:
                addresses.setdefault(host, set()).update(port.ips)
        return tuple(
            RemotePort(
                mac=redirect_mac(router_id, network_id, host), vtep=vtep, ips=tuple(sorted(ips))
            )
            for host, ips in sorted(addresses.items())
            if (vtep := state.vteps.get(host)) is not None
        )
    return ()


def snat_host(state: NetworkAgentState, router: RouterRecord) -> str | None:
    """The host that holds the router's own address: the first by name with a port of one of
    its networks; None if none has one."""
    hosts = {
        port.host
        for port in state.ports.values()
        if not port.deleted and port.host is not None and port.network_id in router.networks
    }
    return min(hosts) if hosts else None


def _version(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None


def _v4(address: str) -> bool:
    return _version(address) == 4


def _interface(
    state: NetworkAgentState, router_id: str, network_id: str, gateway: str, prefix: str
) -> RouterInterface | None:
    network = state.networks[network_id]
    cidr = ipaddress.ip_network(network.cidr, strict=False)
    if _version(gateway) != cidr.version:
        return None
    mac = router_mac(router_id, network_id)
    return RouterInterface(
        network_id=network_id,
        bridge=names.bridge_name(network_id, prefix),
        veth=names.router_interface_name(router_id, network_id, prefix),
        mac=mac,
        address=f"{gateway}/{cidr.prefixlen}",
        cidr=str(cidr),
        zone=zone(network.vni),
        link_local=link_local(mac) if cidr.version == 6 else "",
        routed_mac=dvr.routed_mac(router_id, network_id, state.host),
        neighbours=dvr.neighbours(state, network_id, cidr.version),
    )


def routers(
    state: NetworkAgentState, local_ports: Mapping[str, tuple[str, tuple[str, ...]]], prefix: str
) -> tuple[RouterPlumbing, ...]:
    """The routers this host plumbs, given the ports plugged in here (port id -> its network
    and addresses)."""
    local = {network_id for network_id, _ in local_ports.values()}
    planned: list[RouterPlumbing] = []
    for router_id, router in sorted(state.routers.items()):
        external = state.externals.get(router.external_network_id)
        if external is None or not dvr.plumbed(state, router):
            continue
        # A leg on each of its networks: the source host routes (`core.dvr`).
        interfaces = tuple(
            _snat_side(state, router_id, router, leg, prefix)
            for network_id, gateway in sorted(router.networks.items())
            if network_id in state.networks
            if (leg := _interface(state, router_id, network_id, gateway, prefix)) is not None
        )
        if not any(leg.network_id in local for leg in interfaces):
            continue  # none of its networks has a port here
        attached = {leg.network_id for leg in interfaces}
        candidates = sorted(
            (
                FloatingNat(fip.ip, fip.fixed_ip)
                for fip in state.floating_ips.values()
                if fip.port_id is not None
                and fip.port_id in local_ports
                and fip.external_network_id == router.external_network_id
                and fip.network_id in attached
                and fip.fixed_ip in local_ports[fip.port_id][1]
                and _v4(fip.ip)
                and _v4(fip.fixed_ip)
            ),
            key=lambda nat: (nat.floating_ip, nat.fixed_ip),
        )
        # One floating IP per fixed address (the controller's rule; SNAT needs it).
        floating = {nat.fixed_ip: nat for nat in reversed(candidates)}
        planned.append(
            RouterPlumbing(
                router_id=router_id,
                namespace=names.router_namespace(router_id, state.host, prefix),
                host_interface=external.host_interface,
                veth=names.router_external_name(router_id, prefix),
                external_cidr=str(ipaddress.ip_network(external.cidr, strict=False)),
                external_gateway=external.gateway_ip,
                snat_ip=router.external_ip if snat_host(state, router) == state.host else None,
                interfaces=interfaces,
                floating=tuple(sorted(floating.values(), key=lambda n: n.floating_ip)),
            )
        )
    return tuple(planned)


@dataclass(frozen=True, slots=True)
class FloatingReport:
    """A floating IP's plumbing on this host, to be reported (`FloatingIpAssociated` or
    `FloatingIpUnplumbed`); `namespace`: its router's here ("" for an unplumbing)."""

    floating_ip_id: str
    tenant_id: str | None
    port_id: str
    acceptance: str
    """The acceptance (event id) it reports on."""
    network_id: str = ""
    fixed_ip: str = ""
    namespace: str = ""


def reports(
    state: NetworkAgentState, planned: tuple[RouterPlumbing, ...]
) -> tuple[tuple[FloatingReport, ...], tuple[FloatingReport, ...]]:
    """The floating IPs `planned` NATs that this host has not reported plumbed yet, and those
    it reported plumbed that it no longer NATs (to report once their rules are gone)."""
    where = {nat: router.namespace for router in planned for nat in router.floating}
    plumbed: dict[str, FloatingReport] = {}
    for fip_id, fip in sorted(state.floating_ips.items()):
        namespace = where.get(FloatingNat(fip.ip, fip.fixed_ip))
        if fip.port_id is None or namespace is None:
            continue
        plumbed[fip_id] = FloatingReport(
            fip_id, fip.tenant_id, fip.port_id, fip.acceptance, fip.network_id, fip.fixed_ip,
            namespace,
        )  # fmt: skip
    # Accepted again (the same port, re-associated): the same rules, confirmed anew.
    confirm = tuple(
        report
        for fip_id, report in plumbed.items()
        if (known := state.confirmed.get(fip_id)) is None
        or (known.port_id, known.acceptance) != (report.port_id, report.acceptance)
    )
    unplumb = tuple(
        FloatingReport(fip_id, known.tenant_id, known.port_id, known.acceptance)
        for fip_id, known in sorted(state.confirmed.items())
        if fip_id not in plumbed or plumbed[fip_id].port_id != known.port_id
    )
    return confirm, unplumb
