"""Routers and floating IPs on this host: which of the log's routers this host plumbs, and how.

Distributed, with no network node: a router is plumbed on every host with a port on one of
its networks, as a namespace of its own (`names.router_namespace`) with a leg on each such
network's bridge (the network's gateway address, the same MAC on every host) and a leg on
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
  name, the log assigns a port of the router's networks to. Guests without a floating IP on
  another host reach the gateway but not the external network (not built yet).

Pure: the agent's state and this host's port plans in, `RouterPlumbing` out.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from virga_network.agent.core import names
from virga_network.agent.core.model import NetworkAgentState, RouterRecord
from virga_network.agent.core.nft_text import link_local
from virga_network.agent.core.plumbing import FloatingNat, RouterInterface, RouterPlumbing, zone


def router_mac(router_id: str, network_id: str) -> str:
    """The router's MAC on a network: the same on every host, locally administered."""
    digest = hashlib.sha256(f"router/{router_id}/{network_id}".encode()).digest()
    return ":".join(f"{b:02x}" for b in (0x0E, *digest[:5]))


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
        if external is None or not router.external_ip:
            continue
        interfaces = tuple(
            leg
            for network_id, gateway in sorted(router.networks.items())
            if network_id in local and network_id in state.networks
            if (leg := _interface(state, router_id, network_id, gateway, prefix)) is not None
        )
        if not interfaces:
            continue
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
