"""How floating IP facts fold into the projection, in any topic order: the external network
lists its live floating IPs, and a port (and its instance) the floating IPs pointed at it."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import l3
from virga_gateway.external_networks.fold import external_network_record
from virga_gateway.floating_ips.model import CONFIRMATIONS_KEPT, FloatingIp
from virga_gateway.ports.model import Port
from virga_gateway.retention import earliest, is_forgotten
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def floating_ip_record(state: GatewayState, env: Envelope) -> FloatingIp:
    fip = state.floating_ips.get(env.aggregate_id)
    if fip is None:
        fip = state.floating_ips[env.aggregate_id] = FloatingIp(id=env.aggregate_id)
    if fip.updated_at is None or env.occurred_at > fip.updated_at:
        fip.updated_at = env.occurred_at
    if not fip.tenant_id and env.tenant_id:
        fip.tenant_id = env.tenant_id
    return fip


def mirror_to_instance(state: GatewayState, port: Port) -> None:
    """An instance shows its port's floating IPs."""
    if port.instance_id is None:
        return
    instance = state.instances.get(port.instance_id)
    if instance is not None:
        instance.floating_ips = {} if port.deleted else dict(port.floating_ips)


def _point(state: GatewayState, fip: FloatingIp, port_id: str | None) -> None:
    for old in (fip.port_id, port_id):
        port = state.ports.get(old) if old is not None else None
        if port is not None:
            port.floating_ips.pop(fip.id, None)
            mirror_to_instance(state, port)
    fip.port_id = port_id
    _show_on_port(state, fip)


def _show_on_port(state: GatewayState, fip: FloatingIp) -> None:
    if fip.port_id is None or is_forgotten(state, "port", fip.port_id):
        return
    port = state.ports.get(fip.port_id)
    if port is None:  # folded before the port's own facts (a rebuild)
        port = state.ports[fip.port_id] = Port(id=fip.port_id)
    port.floating_ips[fip.id] = fip.ip or ""
    mirror_to_instance(state, port)


def _sync_users(state: GatewayState, fip: FloatingIp) -> None:
    if not fip.external_network_id:
        return
    if is_forgotten(state, "external_network", fip.external_network_id):
        return
    users = external_network_record(state, fip.external_network_id).floating_ips
    if fip.live and fip.id not in users:
        users.append(fip.id)
    elif not fip.live and fip.id in users:
        users.remove(fip.id)


@folds.on(l3.FloatingIpRequested)
def _requested(state: GatewayState, env: Envelope, event: l3.FloatingIpRequested) -> None:
    fip = floating_ip_record(state, env)
    if fip.requested:
        return
    fip.requested, fip.created_at = True, env.occurred_at
    fip.external_network_id = event.external_network_id
    key = (env.occurred_at, fip.id)
    bisect.insort(state.tenant_floating_ip_order.setdefault(fip.tenant_id, []), key)
    _sync_users(state, fip)


@folds.on(l3.FloatingIpAllocated)
def _allocated(state: GatewayState, env: Envelope, event: l3.FloatingIpAllocated) -> None:
    fip = floating_ip_record(state, env)
    fip.ip, fip.external_network_id = event.ip, event.external_network_id
    _show_on_port(state, fip)
    _sync_users(state, fip)


@folds.on(l3.FloatingIpAllocationFailed)
def _allocation_failed(
    state: GatewayState, env: Envelope, event: l3.FloatingIpAllocationFailed
) -> None:
    fip = floating_ip_record(state, env)
    fip.allocation_fault = event.reason
    _sync_users(state, fip)


@folds.on(l3.FloatingIpAssociationRequested)
def _association_requested(
    state: GatewayState, env: Envelope, event: l3.FloatingIpAssociationRequested
) -> None:
    floating_ip_record(state, env).association_fault = None


@folds.on(l3.FloatingIpAssociationAccepted)
def _accepted(state: GatewayState, env: Envelope, event: l3.FloatingIpAssociationAccepted) -> None:
    fip = floating_ip_record(state, env)
    fip.fixed_ip, fip.association_fault = event.fixed_ip, None
    fip.host, fip.acceptance = event.host, env.event_id
    _point(state, fip, event.port_id)


def _confirm(fip: FloatingIp, acceptance: str, host: str | None) -> None:
    fip.confirmations.pop(acceptance, None)
    fip.confirmations[acceptance] = host
    for old in list(fip.confirmations)[: max(0, len(fip.confirmations) - CONFIRMATIONS_KEPT)]:
        if old != fip.acceptance:
            del fip.confirmations[old]


@folds.on(l3.FloatingIpAssociated)
def _associated(state: GatewayState, env: Envelope, event: l3.FloatingIpAssociated) -> None:
    """A host confirmed an acceptance: it counts if that acceptance named it (`status`)."""
    fip = floating_ip_record(state, env)
    if event.accepted:  # v1: the controller's decision, done at once
        fip.fixed_ip, fip.association_fault = event.fixed_ip, None
        fip.host, fip.acceptance = event.host, env.event_id
        _confirm(fip, env.event_id, event.host)
        _point(state, fip, event.port_id)
    else:
        _confirm(fip, event.acceptance, event.host)


@folds.on(l3.FloatingIpUnplumbed)
def _unplumbed(state: GatewayState, env: Envelope, event: l3.FloatingIpUnplumbed) -> None:
    fip = floating_ip_record(state, env)
    if fip.confirmations.get(event.acceptance) == event.host:
        _confirm(fip, event.acceptance, None)


@folds.on(l3.FloatingIpAssociationFailed)
def _association_failed(
    state: GatewayState, env: Envelope, event: l3.FloatingIpAssociationFailed
) -> None:
    floating_ip_record(state, env).association_fault = event.reason


@folds.on(l3.FloatingIpDissociated)
def _dissociated(state: GatewayState, env: Envelope, event: l3.FloatingIpDissociated) -> None:
    fip = floating_ip_record(state, env)
    if fip.port_id == event.port_id:
        _point(state, fip, None)


@folds.on(l3.FloatingIpReleaseRequested)
def _release_requested(
    state: GatewayState, env: Envelope, event: l3.FloatingIpReleaseRequested
) -> None:
    floating_ip_record(state, env).release_requested = True


@folds.on(l3.FloatingIpReleased)
def _released(state: GatewayState, env: Envelope, event: l3.FloatingIpReleased) -> None:
    fip = floating_ip_record(state, env)
    fip.released = True
    fip.released_at = earliest(fip.released_at, env.occurred_at)
    _point(state, fip, None)
    _sync_users(state, fip)
