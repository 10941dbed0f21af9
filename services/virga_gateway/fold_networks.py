"""How network, port and security group facts fold into the projection, in any topic order."""

from __future__ import annotations

from collections.abc import Callable

from virga_events import Envelope, Event
from virga_events.catalog import network as net
from virga_gateway.model import GatewayState, Instance, InstanceAddress
from virga_gateway.network_model import Network, PoolRecord, Port, RuleRecord, SecurityGroup
from virga_ipam import SubnetError, parse_subnet, pool_size


def network_record(state: GatewayState, network_id: str, env: Envelope | None = None) -> Network:
    """The network (a stub if its request is not folded yet), touched by `env` if given."""
    network = state.networks.get(network_id)
    if network is None:
        network = state.networks[network_id] = Network(id=network_id)
    if env is not None and (network.updated_at is None or env.occurred_at > network.updated_at):
        network.updated_at = env.occurred_at
    return network


def port_record(state: GatewayState, env: Envelope) -> Port:
    port = state.ports.get(env.aggregate_id)
    if port is None:
        port = state.ports[env.aggregate_id] = Port(id=env.aggregate_id)
    if port.updated_at is None or env.occurred_at > port.updated_at:
        port.updated_at = env.occurred_at
    if not port.tenant_id and env.tenant_id:
        port.tenant_id = env.tenant_id
    return port


def _sync_membership(state: GatewayState, port: Port) -> None:
    """Keep the port in its network's list exactly while it is live."""
    if not port.network_id:
        return
    members = network_record(state, port.network_id).ports
    if port.live and port.id not in members:
        members.append(port.id)
    elif not port.live and port.id in members:
        members.remove(port.id)


def _network_requested(state: GatewayState, env: Envelope) -> None:
    event: net.NetworkRequested = env.payload
    network = network_record(state, env.aggregate_id, env)
    if network.requested:
        return
    network.requested = True
    network.tenant_id = env.tenant_id or ""
    network.name, network.cidr = event.name, event.cidr
    network.created_at = env.occurred_at
    if not network.created:  # the controller's pools (defaults filled in) win
        network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]
    try:
        subnet = parse_subnet(event.cidr)
        pairs = [(p.start, p.end) for p in event.allocation_pools]
        network.pool_size = pool_size(subnet.pools(pairs))
    except SubnetError:
        network.pool_size = 0  # the controller refuses it too (NetworkCreationFailed)


def _network_created(state: GatewayState, env: Envelope) -> None:
    event: net.NetworkCreated = env.payload
    network = network_record(state, env.aggregate_id, env)
    network.created, network.vni, network.gateway_ip = True, event.vni, event.gateway_ip
    network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]


def _network_creation_failed(state: GatewayState, env: Envelope) -> None:
    event: net.NetworkCreationFailed = env.payload
    network_record(state, env.aggregate_id, env).creation_fault = event.reason


def _network_deletion_requested(state: GatewayState, env: Envelope) -> None:
    network_record(state, env.aggregate_id, env).deletion_requests += 1


def _network_deletion_failed(state: GatewayState, env: Envelope) -> None:
    event: net.NetworkDeletionFailed = env.payload
    network = network_record(state, env.aggregate_id, env)
    network.deletion_failures += 1
    network.deletion_fault = event.reason


def _network_deleted(state: GatewayState, env: Envelope) -> None:
    network_record(state, env.aggregate_id, env).deleted = True


def _port_requested(state: GatewayState, env: Envelope) -> None:
    event: net.PortRequested = env.payload
    port = port_record(state, env)
    if port.requested:
        return
    port.requested = True
    port.network_id, port.name = event.network_id, event.name
    port.created_at = env.occurred_at
    if not port.allocated:
        port.security_groups = list(event.security_groups)
    _sync_membership(state, port)


def _port_allocated(state: GatewayState, env: Envelope) -> None:
    event: net.PortAllocated = env.payload
    port = port_record(state, env)
    port.allocated = True
    port.network_id, port.mac, port.ips = event.network_id, event.mac, list(event.ips)
    port.security_groups = list(event.security_groups)
    if event.instance_id is not None:
        # An instance's port has no request of its own: its allocation introduces it.
        port.instance_id, port.requested = event.instance_id, True
        port.name = port.name or event.name
        port.created_at = port.created_at or env.occurred_at
        instance = state.instances.get(event.instance_id)
        if instance is None:
            instance = state.instances[event.instance_id] = Instance(id=event.instance_id)
        if not port.deleted:
            instance.addresses = [
                InstanceAddress(network=event.network_id, ip=ip, mac=event.mac) for ip in event.ips
            ]
    _sync_membership(state, port)


def _port_allocation_failed(state: GatewayState, env: Envelope) -> None:
    event: net.PortAllocationFailed = env.payload
    port = port_record(state, env)
    port.allocation_fault = event.reason
    if event.instance_id is not None:
        port.instance_id, port.requested, port.network_id = (
            event.instance_id,
            True,
            event.network_id,
        )
        port.created_at = port.created_at or env.occurred_at
    _sync_membership(state, port)


def _port_host_assigned(state: GatewayState, env: Envelope) -> None:
    event: net.PortHostAssigned = env.payload
    port_record(state, env).host = event.host


def _port_bound(state: GatewayState, env: Envelope) -> None:
    event: net.PortBound = env.payload
    port = port_record(state, env)
    port.bound_host, port.binding_fault = event.host, None


def _port_binding_failed(state: GatewayState, env: Envelope) -> None:
    event: net.PortBindingFailed = env.payload
    port_record(state, env).binding_fault = f"on {event.host}: {event.reason}"


def _port_unbound(state: GatewayState, env: Envelope) -> None:
    event: net.PortUnbound = env.payload
    port = port_record(state, env)
    if port.bound_host == event.host:
        port.bound_host = None


def _port_deletion_requested(state: GatewayState, env: Envelope) -> None:
    port_record(state, env).deletion_requested = True


def _port_deleted(state: GatewayState, env: Envelope) -> None:
    port = port_record(state, env)
    port.deleted = True
    _sync_membership(state, port)
    if port.instance_id is not None:
        instance = state.instances.get(port.instance_id)
        if instance is not None:
            instance.addresses = []


def _security_group_created(state: GatewayState, env: Envelope) -> None:
    event: net.SecurityGroupCreated = env.payload
    rules = [
        RuleRecord(
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_min=r.port_min,
            port_max=r.port_max,
            remote_cidr=r.remote_cidr,
            remote_group=r.remote_group,
        )
        for r in event.rules
    ]
    state.security_groups[env.aggregate_id] = SecurityGroup(
        id=env.aggregate_id,
        tenant_id=env.tenant_id or "",
        name=event.name,
        rules=rules,
        created_at=env.occurred_at,
    )


def _security_group_deleted(state: GatewayState, env: Envelope) -> None:
    state.security_groups.pop(env.aggregate_id, None)


HANDLERS: dict[type[Event], Callable[[GatewayState, Envelope], None]] = {
    net.NetworkRequested: _network_requested,
    net.NetworkCreated: _network_created,
    net.NetworkCreationFailed: _network_creation_failed,
    net.NetworkDeletionRequested: _network_deletion_requested,
    net.NetworkDeletionFailed: _network_deletion_failed,
    net.NetworkDeleted: _network_deleted,
    net.PortRequested: _port_requested,
    net.PortAllocated: _port_allocated,
    net.PortAllocationFailed: _port_allocation_failed,
    net.PortHostAssigned: _port_host_assigned,
    net.PortBound: _port_bound,
    net.PortBindingFailed: _port_binding_failed,
    net.PortUnbound: _port_unbound,
    net.PortDeletionRequested: _port_deletion_requested,
    net.PortDeleted: _port_deleted,
    net.SecurityGroupCreated: _security_group_created,
    net.SecurityGroupDeleted: _security_group_deleted,
}
