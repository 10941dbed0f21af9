"""How port facts (the controller's allocations, the agents' bindings) fold into the
projection, in any topic order; a port's network lists it while it is live."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import network as net
from virga_gateway.cursor import remove_key
from virga_gateway.instances.model import Instance, InstanceAddress
from virga_gateway.networks.fold import network_record
from virga_gateway.ports.model import Port
from virga_gateway.retention import earliest, is_forgotten
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def port_record(state: GatewayState, env: Envelope) -> Port:
    port = state.ports.get(env.aggregate_id)
    if port is None:
        port = state.ports[env.aggregate_id] = Port(id=env.aggregate_id)
    if port.updated_at is None or env.occurred_at > port.updated_at:
        port.updated_at = env.occurred_at
    if not port.tenant_id and env.tenant_id:
        port.tenant_id = env.tenant_id
        _sync_listing(state, port)
    return port


def _sync_membership(state: GatewayState, port: Port) -> None:
    """Keep the port in its network's list exactly while it is live, and in the listings'
    indexes (its tenant's, its network's) once requested."""
    _sync_listing(state, port)
    if not port.network_id or is_forgotten(state, "network", port.network_id):
        return
    members = network_record(state, port.network_id).ports
    if port.live and port.id not in members:
        members.append(port.id)
    elif not port.live and port.id in members:
        members.remove(port.id)


def _sync_listing(state: GatewayState, port: Port) -> None:
    if not port.requested or port.created_at is None:
        return
    listed_as = (port.tenant_id, port.network_id, port.created_at)
    if port.listed_as == listed_as:
        return
    if port.listed_as is not None:
        tenant_id, network_id, created_at = port.listed_as
        remove_key(state.tenant_port_order.get(tenant_id, []), (created_at, port.id))
        remove_key(state.network_port_order.get(network_id, []), (created_at, port.id))
    key = (port.created_at, port.id)
    bisect.insort(state.tenant_port_order.setdefault(port.tenant_id, []), key)
    bisect.insort(state.network_port_order.setdefault(port.network_id, []), key)
    port.listed_as = listed_as


@folds.on(net.PortRequested)
def _port_requested(state: GatewayState, env: Envelope, event: net.PortRequested) -> None:
    port = port_record(state, env)
    if port.requested:
        return
    port.requested = True
    port.network_id, port.name = event.network_id, event.name
    port.created_at = env.occurred_at
    if not port.allocated and not port.groups_changed:
        port.security_groups = list(event.security_groups)
    _sync_membership(state, port)


@folds.on(net.PortAllocated)
def _port_allocated(state: GatewayState, env: Envelope, event: net.PortAllocated) -> None:
    port = port_record(state, env)
    port.allocated = True
    port.network_id, port.mac, port.ips = event.network_id, event.mac, list(event.ips)
    if not port.groups_changed:
        port.security_groups = list(event.security_groups)
    if event.instance_id is not None:
        # An instance's port has no request of its own: its allocation introduces it.
        port.instance_id, port.requested = event.instance_id, True
        port.name = port.name or event.name
        port.created_at = port.created_at or env.occurred_at
        instance = state.instances.get(event.instance_id)
        if instance is None and not is_forgotten(state, "instance", event.instance_id):
            instance = state.instances[event.instance_id] = Instance(id=event.instance_id)
        if instance is not None and not port.deleted:
            instance.addresses = [
                InstanceAddress(network=event.network_id, ip=ip, mac=event.mac) for ip in event.ips
            ]
            instance.floating_ips = dict(port.floating_ips)
    _sync_membership(state, port)


@folds.on(net.PortAllocationFailed)
def _port_allocation_failed(
    state: GatewayState, env: Envelope, event: net.PortAllocationFailed
) -> None:
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


@folds.on(net.PortHostAssigned)
def _port_host_assigned(state: GatewayState, env: Envelope, event: net.PortHostAssigned) -> None:
    port_record(state, env).host = event.host


@folds.on(net.PortBound)
def _port_bound(state: GatewayState, env: Envelope, event: net.PortBound) -> None:
    port = port_record(state, env)
    port.bound_host, port.binding_fault = event.host, None


@folds.on(net.PortBindingFailed)
def _port_binding_failed(state: GatewayState, env: Envelope, event: net.PortBindingFailed) -> None:
    port_record(state, env).binding_fault = f"on {event.host}: {event.reason}"


@folds.on(net.PortUnbound)
def _port_unbound(state: GatewayState, env: Envelope, event: net.PortUnbound) -> None:
    port = port_record(state, env)
    if port.bound_host == event.host:
        port.bound_host = None


@folds.on(net.PortSecurityGroupsChanged)
def _port_security_groups_changed(
    state: GatewayState, env: Envelope, event: net.PortSecurityGroupsChanged
) -> None:
    port = port_record(state, env)
    port.security_groups, port.groups_changed = list(event.security_groups), True


@folds.on(net.PortDeletionRequested)
def _port_deletion_requested(
    state: GatewayState, env: Envelope, event: net.PortDeletionRequested
) -> None:
    port_record(state, env).deletion_requested = True


@folds.on(net.PortDeleted)
def _port_deleted(state: GatewayState, env: Envelope, event: net.PortDeleted) -> None:
    port = port_record(state, env)
    port.deleted = True
    port.deleted_at = earliest(port.deleted_at, env.occurred_at)
    _sync_membership(state, port)
    if port.instance_id is not None:
        instance = state.instances.get(port.instance_id)
        if instance is not None:
            instance.addresses, instance.floating_ips = [], {}
