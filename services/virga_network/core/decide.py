"""The network controller's decisions: pure functions of its state and one new input event.

A request for something that already exists, was deleted, or was refused decides nothing, so
a duplicate or a request re-decided after a crash never hands out a second VXLAN id, MAC or
address. Every choice (lowest free VXLAN id, next address, MAC derived from the port id) is a
function of the state alone, and the state of the fold alone: a restart decides the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from virga_events import Envelope
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.network import (
    AllocationPool,
    NetworkCreated,
    NetworkCreationFailed,
    NetworkDeleted,
    NetworkDeletionFailed,
    NetworkDeletionRequested,
    NetworkRequested,
    PortAllocated,
    PortAllocationFailed,
    PortDeleted,
    PortDeletionRequested,
    PortHostAssigned,
    PortRequested,
    default_security_group_id,
    instance_port_id,
)
from virga_events.catalog.scheduler import InstanceScheduled, MigrationPortSwitchRequested
from virga_ipam import SubnetError, parse_subnet
from virga_network.config import NetworkConfig
from virga_network.core.ipam import next_free
from virga_network.core.l3 import REQUESTS, decide_l3, follow_ports
from virga_network.core.macs import pick_mac
from virga_network.core.model import NetworkState, subnet_of
from virga_runtime.service import Emit, Intent


def decide(config: NetworkConfig, state: NetworkState, envelope: Envelope) -> Sequence[Intent]:
    """What to do about one new input event; `state` already includes it."""
    if isinstance(envelope.payload, REQUESTS):
        return decide_l3(state, envelope, config.mac_prefix)
    # A deleted port's floating IP points at nothing any more; a moved one's follows it.
    return follow_ports(state, _decide(config, state, envelope))


def _decide(config: NetworkConfig, state: NetworkState, envelope: Envelope) -> Sequence[Intent]:
    event, aggregate, tenant = envelope.payload, envelope.aggregate_id, envelope.tenant_id
    if isinstance(event, NetworkRequested):
        return _create_network(config, state, envelope, event)
    if isinstance(event, NetworkDeletionRequested):
        return _delete_network(state, envelope)
    if isinstance(event, PortRequested):
        request = _PortRequest(aggregate, tenant, event.network_id, event.name, None)
        return _allocate(config, state, request, event.security_groups, event.host)
    if isinstance(event, InstanceRequested) and event.network is not None:
        if aggregate in state.deleted_instances:
            return ()
        placement = state.placements.get(aggregate)
        request = _PortRequest(
            instance_port_id(aggregate), tenant, event.network, f"{event.name}-port", aggregate
        )
        host = placement.host if placement else None
        return _allocate(config, state, request, event.security_groups, host)
    if isinstance(event, InstanceScheduled):
        port = state.ports.get(instance_port_id(aggregate))
        placement = state.placements.get(aggregate)
        # Only the newest placement moves the port (an older attempt may arrive late).
        if port is None or placement is None or placement.host == port.host:
            return ()
        return [Emit(PortHostAssigned(host=placement.host), port.port_id, port.tenant_id)]
    if isinstance(event, MigrationPortSwitchRequested):
        # A live migration's switch: the port's one owner moves it; the agents follow.
        port = state.ports.get(instance_port_id(aggregate))
        if port is None or port.instance_id != aggregate or port.host == event.host:
            return ()  # no port, or moved already (a re-sent request)
        return [Emit(PortHostAssigned(host=event.host), port.port_id, port.tenant_id)]
    if isinstance(event, PortDeletionRequested):
        port = state.ports.get(aggregate)
        if port is None and aggregate in state.refused:
            return [Emit(PortDeleted(), aggregate, tenant)]  # a refused port leaves the lists
        if port is None or port.tenant_id != tenant:
            return ()  # deleted already (a repeated request), or never asked for
        return [Emit(PortDeleted(), aggregate, port.tenant_id)]
    if isinstance(event, InstanceDeleted):
        port_id = instance_port_id(aggregate)
        port = state.ports.get(port_id)
        if port is None and port_id in state.refused:
            return [Emit(PortDeleted(), port_id, tenant)]  # its refusal leaves the lists too
        if port is None or port.instance_id != aggregate:
            return ()
        return [Emit(PortDeleted(), port.port_id, port.tenant_id)]
    return ()


def _create_network(
    config: NetworkConfig, state: NetworkState, envelope: Envelope, event: NetworkRequested
) -> Sequence[Intent]:
    network_id, tenant = envelope.aggregate_id, envelope.tenant_id
    known = state.networks.get(network_id)
    if (known is not None and known.created) or network_id in state.deleted_networks:
        return ()
    if network_id in state.refused:
        return ()

    def failed(reason: str) -> Sequence[Intent]:
        return [Emit(NetworkCreationFailed(reason=reason), network_id, tenant)]

    # The gateway validated the request; the controller checks again because it is the one
    # that hands out from the subnet (and an operator may write requests by other means).
    try:
        subnet = parse_subnet(event.cidr)
        pools = subnet.pools([(p.start, p.end) for p in event.allocation_pools])
    except SubnetError as exc:
        return failed(str(exc))
    vni = config.vni_min
    while vni in state.vnis:  # the lowest free id: deleted networks' ids come back first
        vni += 1
    if vni > config.vni_max:
        return failed(f"every VXLAN id from {config.vni_min} to {config.vni_max} is in use")
    created = NetworkCreated(
        name=event.name,
        cidr=str(subnet.network),
        vni=vni,
        gateway_ip=subnet.gateway_ip,
        allocation_pools=tuple(
            AllocationPool(start=subnet.address(low), end=subnet.address(high))
            for low, high in pools
        ),
        dhcp=event.dhcp,
    )
    return [Emit(created, network_id, tenant)]


def _delete_network(state: NetworkState, envelope: Envelope) -> Sequence[Intent]:
    network_id, tenant = envelope.aggregate_id, envelope.tenant_id
    if network_id in state.deleted_networks:
        return ()  # a repeated request
    if network_id in state.refused:
        return [Emit(NetworkDeleted(), network_id, tenant)]  # never created: nothing to free
    network = state.networks.get(network_id)
    if network is None or not network.created or network.tenant_id != tenant:
        failed = NetworkDeletionFailed(reason=f"no network {network_id}")
        return [Emit(failed, network_id, tenant)]
    router = state.network_routers.get(network_id)
    if router is not None:
        reason = f"network {network_id} is attached to router {router}: remove the interface"
        return [Emit(NetworkDeletionFailed(reason=reason), network_id, tenant)]
    if network.ports:
        ports = tuple(network.ports)
        reason = f"network {network_id} still has ports: {', '.join(ports)}"
        return [Emit(NetworkDeletionFailed(reason=reason, ports=ports), network_id, tenant)]
    return [Emit(NetworkDeleted(), network_id, tenant)]


class _PortRequest:
    """What a port request and an instance request with a network have in common."""

    __slots__ = ("instance_id", "name", "network_id", "port_id", "tenant_id")

    def __init__(
        self,
        port_id: str,
        tenant_id: str | None,
        network_id: str,
        name: str,
        instance_id: str | None,
    ) -> None:
        self.port_id, self.tenant_id, self.network_id = port_id, tenant_id, network_id
        self.name, self.instance_id = name, instance_id


def _allocate(
    config: NetworkConfig,
    state: NetworkState,
    request: _PortRequest,
    security_groups: Sequence[str],
    host: str | None,
) -> Sequence[Intent]:
    port_id, tenant = request.port_id, request.tenant_id
    if port_id in state.ports or port_id in state.deleted_ports or port_id in state.refused:
        return ()

    def failed(reason: str) -> Sequence[Intent]:
        event = PortAllocationFailed(
            network_id=request.network_id, reason=reason, instance_id=request.instance_id
        )
        return [Emit(event, port_id, tenant)]

    network = state.networks.get(request.network_id)
    if network is None or not network.created or network.tenant_id != tenant:
        if request.network_id in state.deleted_networks:
            return failed(f"network {request.network_id} was deleted")
        return failed(f"no network {request.network_id}")
    default_group = default_security_group_id(tenant or "")
    groups = tuple(dict.fromkeys(security_groups)) or (default_group,)
    for group in groups:
        if group != default_group and (
            group not in state.security_groups or state.security_groups[group] != tenant
        ):
            return failed(f"no security group {group}")
    offset = next_free(network.pools, network.used, network.high_water, network.in_use_below)
    if offset is None:
        return failed(f"no free address left in the allocation pools of {network.cidr}")
    mac = pick_mac(config.mac_prefix, port_id, state.macs)
    if mac is None:
        return failed("no free MAC found (the MAC space is nearly full)")
    subnet = subnet_of(network.cidr)
    allocated = PortAllocated(
        network_id=network.network_id,
        mac=mac,
        ips=(subnet.address(offset),),
        security_groups=groups,
        instance_id=request.instance_id,
        name=request.name,
    )
    intents: list[Intent] = [Emit(allocated, port_id, tenant)]
    if host is not None:
        intents.append(Emit(PortHostAssigned(host=host), port_id, tenant))
    return intents
