"""The edge of a tenant network on this host: who a caller is, and what it may be told.

Each network with a port here gets an *edge*: a network namespace of its own plugged into
the network's bridge by a veth, where the agent answers DHCP and, on IPv4 networks, serves
metadata at 169.254.169.254 (on IPv6 networks: router advertisements and DHCPv6 from
fe80::a9fe:a9fe, `core.dhcpv6`). A network without DHCP (`NetworkRecord.dhcp`) gets no DHCP
answers (nor the RA's M flag) but the rest: its guests configure themselves statically. A
caller is identified by the edge it reached (its network) and its source address, which the
anti-spoofing rules tie to its port; nothing the guest says is trusted. Only ports bound on
this host are answered. Pure: the agent's state in, facts out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from virga_events.catalog.network import instance_port_id
from virga_guestdata.metadata import GuestFacts, GuestNic, decode_user_data
from virga_network.agent.core import names
from virga_network.agent.core.model import InstanceRecord, NetworkAgentState, PortRecord
from virga_network.agent.core.plumbing import EdgePlumbing

EDGE_ADDRESS = "169.254.169.254"
"""The edge's address on every network: metadata (TCP 80) and DHCP server (UDP 67)."""
VXLAN_OVERHEAD = 50
"""Outer Ethernet, IPv4, UDP and VXLAN headers: what a tenant frame loses of the underlay."""


@dataclass(frozen=True, slots=True)
class EdgeSettings:
    """What the host's configuration adds to the log's facts."""

    underlay_mtu: int = 1500
    dns_servers: tuple[str, ...] = ()

    @property
    def guest_mtu(self) -> int:
        return self.underlay_mtu - VXLAN_OVERHEAD


def edge_plumbing(
    state: NetworkAgentState,
    network_id: str,
    prefix: str,
    ports: list[tuple[str, str]],
    router: str | None = None,
) -> EdgePlumbing | None:
    """The edge of `network_id` given its local ports' (MAC, IPv4) pairs (none on an IPv6
    network: the edge finds its clients by neighbour discovery there) and the link-local
    address of its router's leg on this host (IPv6: the default router it advertises)."""
    network = state.networks[network_id]
    name = names.edge_name(network_id, prefix)
    cidr = ipaddress.ip_network(network.cidr, strict=False)
    return EdgePlumbing(
        namespace=f"{name}-{state.host}",
        veth=name,
        cidr=str(cidr),
        neighbours=tuple(sorted((ip, mac) for mac, ip in ports)),
        router=router if cidr.version == 6 else None,
    )


def _local_port(state: NetworkAgentState, network_id: str, ip: str) -> PortRecord | None:
    for port in state.ports.values():
        if (
            port.network_id == network_id
            and port.host == state.host
            and not port.deleted
            and port.mac is not None
            and ip in port.ips
        ):
            return port
    return None


def _instance_of(state: NetworkAgentState, port: PortRecord) -> InstanceRecord | None:
    """The port's instance: as allocated, else the one whose port id it has (the contract's
    `instance_port_id`; a port bound before its allocation was read)."""
    if port.instance_id is not None:
        return state.instances.get(port.instance_id)
    return next(
        (i for i in state.instances.values() if instance_port_id(i.instance_id) == port.port_id),
        None,
    )


def guest_facts(
    state: NetworkAgentState, network_id: str, ip: str, settings: EdgeSettings
) -> GuestFacts | None:
    """The guest at `ip` on `network_id` if its port is on this host and belongs to an
    instance, else None (the caller gets 404)."""
    port = _local_port(state, network_id, ip)
    network = state.networks.get(network_id)
    if port is None or network is None:
        return None
    instance = _instance_of(state, port)
    if instance is None or instance.tenant_id != port.tenant_id:
        return None
    assert port.mac is not None
    nic = GuestNic(
        mac=port.mac,
        ips=port.ips,
        cidr=network.cidr,
        gateway=network.gateway_ip or None,
        port_id=port.port_id,
        mtu=settings.guest_mtu,
        # The edge answers the port's DHCP unless the network has none: then the guest is
        # told a static configuration (on a DHCP network it would drop the on-link route to
        # 169.254.169.254 that DHCP gives).
        dhcp=network.dhcp,
    )
    return GuestFacts(
        instance_id=instance.instance_id,
        name=instance.name,
        hostname=instance.hostname or instance.name,
        project_id=instance.tenant_id,
        availability_zone=instance.availability_zone,
        key_name=instance.key_name,
        public_keys=instance.public_keys,
        user_data=decode_user_data(instance.user_data),
        nic=nic,
        dns_servers=settings.dns_servers,
    )


@dataclass(frozen=True, slots=True)
class Lease:
    """What DHCP tells one port: its address and its network's settings."""

    mac: str
    ip: str
    prefix_length: int
    router: str | None
    mtu: int
    dns_servers: tuple[str, ...]
    hostname: str | None


def dhcp_lease(
    state: NetworkAgentState, network_id: str, mac: str, settings: EdgeSettings
) -> Lease | None:
    """The lease of the port with `mac` on `network_id` if it is on this host, else None
    (the edge stays silent: another host's port is answered by its own host; and on a
    network without DHCP, every port configures itself statically)."""
    network = state.networks.get(network_id)
    if network is None or not network.dhcp:
        return None
    subnet = ipaddress.ip_network(network.cidr, strict=False)
    for port in state.ports.values():
        if port.network_id != network_id or port.host != state.host or port.deleted:
            continue
        if port.mac is None or port.mac.lower() != mac.lower():
            continue
        ip = next((a for a in port.ips if ipaddress.ip_address(a) in subnet), None)
        if ip is None:
            return None
        instance = _instance_of(state, port)
        return Lease(
            mac=port.mac,
            ip=ip,
            prefix_length=subnet.prefixlen,
            router=network.gateway_ip or None,
            mtu=settings.guest_mtu,
            dns_servers=settings.dns_servers,
            hostname=(instance.hostname or instance.name) if instance is not None else None,
        )
    return None
