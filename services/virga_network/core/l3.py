"""The network controller's decisions on public addresses: external networks, floating IPs,
routers. Pure, like `decide`: a repeated or re-decided request decides nothing new, and every
address is the next free one of the external network's pools (`ipam.next_free`), a function
of the state alone.

The gateway checked each request against its projection; the controller, which folds every
allocation in order, decides for good (two requests racing for the last address, a port
deleted meanwhile) and says so with an event when it refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from virga_events import Envelope, Event
from virga_events.catalog import l3
from virga_events.catalog.network import AllocationPool, PortDeleted, PortHostAssigned
from virga_ipam import SubnetError, check_interface_name, external_pools, parse_subnet
from virga_network.core.ipam import next_free
from virga_network.core.macs import pick_mac
from virga_network.core.model import NetworkRecord, NetworkState, subnet_of
from virga_runtime.service import Emit, Intent

REQUESTS = (
    l3.ExternalNetworkRequested,
    l3.ExternalNetworkDeletionRequested,
    l3.FloatingIpRequested,
    l3.FloatingIpAssociationRequested,
    l3.FloatingIpReleaseRequested,
    l3.RouterRequested,
    l3.RouterInterfaceRequested,
    l3.RouterInterfaceRemovalRequested,
    l3.RouterDeletionRequested,
)
"""The requests `decide_l3` answers."""


def decide_l3(state: NetworkState, envelope: Envelope, mac_prefix: str) -> Sequence[Intent]:
    """The outcome of one request of `REQUESTS`; `mac_prefix`: of the MACs handed out (a
    router's SNAT ports', as ports')."""
    event, aggregate, tenant = envelope.payload, envelope.aggregate_id, envelope.tenant_id

    def emit(outcome: Event) -> Sequence[Intent]:
        return [Emit(outcome, aggregate, tenant)]

    if isinstance(event, l3.ExternalNetworkRequested):
        known = state.external_networks.get(aggregate)
        if (known is not None and known.created) or aggregate in state.gone:
            return ()  # a stub (its holders folded first in a rebuild) is not made yet
        if aggregate in state.refused:
            return ()
        try:
            return emit(_external_network(event))
        except SubnetError as exc:
            return emit(l3.ExternalNetworkCreationFailed(reason=str(exc)))
    if isinstance(event, l3.ExternalNetworkDeletionRequested):
        if aggregate in state.gone:
            return ()
        if aggregate in state.refused:
            return emit(l3.ExternalNetworkDeleted())
        external = state.external_networks.get(aggregate)
        if external is None or not external.created:
            return emit(l3.ExternalNetworkDeletionFailed(reason=f"no external network {aggregate}"))
        if external.holders:
            fips = tuple(h for h in external.holders if h in state.floating_ips)
            routers = tuple(h for h in external.holders if h in state.routers)
            reason = f"external network {aggregate} is in use: {', '.join(external.holders)}"
            failed = l3.ExternalNetworkDeletionFailed(
                reason=reason, floating_ips=fips, routers=routers
            )
            return emit(failed)
        return emit(l3.ExternalNetworkDeleted())
    if isinstance(event, l3.FloatingIpRequested):
        if aggregate in state.floating_ips or aggregate in state.gone or aggregate in state.refused:
            return ()
        ip, reason = _next_address(state, event.external_network_id)
        if ip is None:
            return emit(
                l3.FloatingIpAllocationFailed(
                    external_network_id=event.external_network_id, reason=reason
                )
            )
        return emit(l3.FloatingIpAllocated(external_network_id=event.external_network_id, ip=ip))
    if isinstance(event, l3.FloatingIpAssociationRequested):
        return _associate(state, envelope, event)
    if isinstance(event, l3.FloatingIpReleaseRequested):
        if aggregate in state.refused:
            return emit(l3.FloatingIpReleased(external_network_id=""))
        fip = state.floating_ips.get(aggregate)
        if fip is None or fip.tenant_id != tenant:
            return ()
        return emit(l3.FloatingIpReleased(external_network_id=fip.external_network_id, ip=fip.ip))
    return _decide_router(state, envelope, mac_prefix)


def _external_network(event: l3.ExternalNetworkRequested) -> l3.ExternalNetworkCreated:
    subnet = parse_subnet(event.cidr)
    given = [(p.start, p.end) for p in event.allocation_pools]
    _, pools = external_pools(subnet, event.gateway_ip, given)
    return l3.ExternalNetworkCreated(
        name=event.name,
        cidr=str(subnet.network),
        gateway_ip=event.gateway_ip,
        allocation_pools=tuple(
            AllocationPool(start=subnet.address(low), end=subnet.address(high))
            for low, high in pools
        ),
        host_interface=check_interface_name(event.host_interface),
    )


def _next_address(state: NetworkState, external_network_id: str) -> tuple[str | None, str]:
    """The next free address of the external network, or None and why not."""
    external = state.external_networks.get(external_network_id)
    if external is None or not external.created:
        return None, f"no external network {external_network_id}"
    offset = next_free(external.pools, external.used, external.high_water, external.in_use_below)
    if offset is None:
        return None, f"no free address left in the pools of external network {external.cidr}"
    return subnet_of(external.cidr).address(offset), ""


def _associate(
    state: NetworkState, envelope: Envelope, event: l3.FloatingIpAssociationRequested
) -> Sequence[Intent]:
    fip_id, tenant = envelope.aggregate_id, envelope.tenant_id
    fip = state.floating_ips.get(fip_id)
    if fip is None or fip.tenant_id != tenant:
        return ()  # released meanwhile, or never allocated: nothing to point

    def failed(reason: str) -> Sequence[Intent]:
        outcome = l3.FloatingIpAssociationFailed(port_id=event.port_id, reason=reason)
        return [Emit(outcome, fip_id, tenant)]

    if event.port_id is None:
        if fip.port_id is None:
            return ()
        return [Emit(l3.FloatingIpDissociated(port_id=fip.port_id), fip_id, tenant)]
    if fip.port_id == event.port_id:
        return ()
    port = state.ports.get(event.port_id)
    if port is None or port.tenant_id != tenant or not port.ips:
        return failed(f"no port {event.port_id}")
    holders = [h for h in state.port_floating_ips.get(port.port_id, ()) if h != fip_id]
    if holders:
        return failed(f"port {port.port_id} already has floating IP {holders[0]}")
    router = state.routers.get(state.network_routers.get(port.network_id, ""))
    if router is None or router.external_network_id != fip.external_network_id:
        return failed(
            f"network {port.network_id} of port {port.port_id} has no router on external"
            f" network {fip.external_network_id}"
        )
    accepted = l3.FloatingIpAssociationAccepted(
        port_id=port.port_id, network_id=port.network_id, fixed_ip=port.ips[0], host=port.host
    )
    return [Emit(accepted, fip_id, tenant)]


def _interface(
    state: NetworkState, network: NetworkRecord, router_id: str, mac_prefix: str
) -> l3.RouterInterfaceAdded | l3.RouterInterfaceAdditionFailed:
    """The interface with its SNAT port: the network's next free address and a MAC derived
    as a port's (`snat_port_id` in place of the port id). IPv6 is routed without NAT: an
    IPv6 network's interface holds no SNAT port."""
    network_id = network.network_id
    if ipaddress.ip_network(network.cidr, strict=False).version == 6:
        return l3.RouterInterfaceAdded(
            network_id=network_id, gateway_ip=subnet_of(network.cidr).gateway_ip
        )
    offset = next_free(network.pools, network.used, network.high_water, network.in_use_below)
    if offset is None:
        reason = f"no free address left in the pools of {network.cidr} for the SNAT port"
        return l3.RouterInterfaceAdditionFailed(network_id=network_id, reason=reason)
    mac = pick_mac(mac_prefix, l3.snat_port_id(router_id, network_id), state.macs)
    if mac is None:
        reason = "no free MAC found for the SNAT port (the MAC space is nearly full)"
        return l3.RouterInterfaceAdditionFailed(network_id=network_id, reason=reason)
    subnet = subnet_of(network.cidr)
    return l3.RouterInterfaceAdded(
        network_id=network_id,
        gateway_ip=subnet.gateway_ip,
        snat_mac=mac,
        snat_ip=subnet.address(offset),
    )


def follow_ports(state: NetworkState, intents: Sequence[Intent]) -> list[Intent]:
    """`intents`, each port deletion followed by the dissociation of its floating IP, and each
    port's move to a host by its floating IP's association accepted again, naming the new host
    (what the host data path will act on; that host confirms it)."""
    more: list[Intent] = list(intents)
    for intent in intents:
        if not isinstance(intent, Emit) or not isinstance(
            intent.payload, PortDeleted | PortHostAssigned
        ):
            continue
        port_id = intent.aggregate_id
        port = state.ports.get(port_id)
        for fip_id in state.port_floating_ips.get(port_id, ()):
            fip = state.floating_ips[fip_id]
            outcome: Event
            if isinstance(intent.payload, PortDeleted):
                outcome = l3.FloatingIpDissociated(port_id=port_id)
            elif port is not None and port.ips:
                outcome = l3.FloatingIpAssociationAccepted(
                    port_id=port_id,
                    network_id=port.network_id,
                    fixed_ip=port.ips[0],
                    host=intent.payload.host,
                )
            else:
                continue
            more.append(Emit(outcome, fip_id, fip.tenant_id))
    return more


def _decide_router(state: NetworkState, envelope: Envelope, mac_prefix: str) -> Sequence[Intent]:
    event, aggregate, tenant = envelope.payload, envelope.aggregate_id, envelope.tenant_id

    def emit(outcome: Event) -> Sequence[Intent]:
        return [Emit(outcome, aggregate, tenant)]

    if isinstance(event, l3.RouterRequested):
        if aggregate in state.routers or aggregate in state.gone or aggregate in state.refused:
            return ()
        ip, reason = _next_address(state, event.external_network_id)
        if ip is None:
            return emit(
                l3.RouterCreationFailed(
                    external_network_id=event.external_network_id, reason=reason
                )
            )
        created = l3.RouterCreated(
            name=event.name, external_network_id=event.external_network_id, external_ip=ip
        )
        return emit(created)
    if isinstance(event, l3.RouterDeletionRequested):
        if aggregate in state.refused:
            return emit(l3.RouterDeleted())
        router = state.routers.get(aggregate)
        if router is None or router.tenant_id != tenant:
            return ()
        if router.networks:
            networks = tuple(router.networks)
            reason = f"router {aggregate} still has interfaces on: {', '.join(networks)}"
            return emit(l3.RouterDeletionFailed(reason=reason, networks=networks))
        deleted = l3.RouterDeleted(
            external_network_id=router.external_network_id, external_ip=router.external_ip
        )
        return emit(deleted)
    if not isinstance(event, l3.RouterInterfaceRequested | l3.RouterInterfaceRemovalRequested):
        return ()
    router = state.routers.get(aggregate)
    if router is None or router.tenant_id != tenant:
        return ()
    network_id = event.network_id
    if isinstance(event, l3.RouterInterfaceRequested):
        if network_id in router.networks:
            return ()
        network = state.networks.get(network_id)
        if network is None or not network.created or network.tenant_id != tenant:
            reason = f"no network {network_id}"
        elif network_id in state.network_routers:
            reason = (
                f"network {network_id} is attached to router {state.network_routers[network_id]}"
            )
        else:
            return emit(_interface(state, network, aggregate, mac_prefix))
        return emit(l3.RouterInterfaceAdditionFailed(network_id=network_id, reason=reason))
    if network_id not in router.networks:
        return ()  # removed already (a repeated request)
    behind = tuple(
        fip.floating_ip_id
        for fip in state.floating_ips.values()
        if fip.port_id is not None
        and (port := state.ports.get(fip.port_id)) is not None
        and port.network_id == network_id
    )
    if behind:
        reason = f"floating IPs point at ports of network {network_id}: {', '.join(behind)}"
        failed = l3.RouterInterfaceRemovalFailed(
            network_id=network_id, reason=reason, floating_ips=behind
        )
        return emit(failed)
    return emit(l3.RouterInterfaceRemoved(network_id=network_id))
