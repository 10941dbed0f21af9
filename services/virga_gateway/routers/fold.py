"""How router facts fold into the projection, in any topic order: the external network lists
its live routers, and a network the router it is attached to."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import l3
from virga_gateway.external_networks.fold import external_network_record
from virga_gateway.networks.fold import network_record
from virga_gateway.retention import earliest, is_forgotten
from virga_gateway.routers.model import Router
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def router_record(state: GatewayState, env: Envelope) -> Router:
    router = state.routers.get(env.aggregate_id)
    if router is None:
        router = state.routers[env.aggregate_id] = Router(id=env.aggregate_id)
    if router.updated_at is None or env.occurred_at > router.updated_at:
        router.updated_at = env.occurred_at
    if not router.tenant_id and env.tenant_id:
        router.tenant_id = env.tenant_id
    return router


def _sync_users(state: GatewayState, router: Router) -> None:
    if not router.external_network_id:
        return
    if is_forgotten(state, "external_network", router.external_network_id):
        return
    users = external_network_record(state, router.external_network_id).routers
    if router.live and router.id not in users:
        users.append(router.id)
    elif not router.live and router.id in users:
        users.remove(router.id)


def _attach(
    state: GatewayState, router: Router, network_id: str, attached: bool, snat_ip: str = ""
) -> None:
    if is_forgotten(state, "network", network_id):
        return
    network = network_record(state, network_id)
    if attached:
        network.router_id, network.snat_ip = router.id, snat_ip or None
    elif network.router_id == router.id:
        network.router_id = network.snat_ip = None


@folds.on(l3.RouterRequested)
def _requested(state: GatewayState, env: Envelope, event: l3.RouterRequested) -> None:
    router = router_record(state, env)
    if router.requested:
        return
    router.requested, router.created_at = True, env.occurred_at
    router.name, router.external_network_id = event.name, event.external_network_id
    key = (env.occurred_at, router.id)
    bisect.insort(state.tenant_router_order.setdefault(router.tenant_id, []), key)
    _sync_users(state, router)


@folds.on(l3.RouterCreated)
def _created(state: GatewayState, env: Envelope, event: l3.RouterCreated) -> None:
    router = router_record(state, env)
    router.external_ip, router.external_network_id = event.external_ip, event.external_network_id
    _sync_users(state, router)


@folds.on(l3.RouterCreationFailed)
def _creation_failed(state: GatewayState, env: Envelope, event: l3.RouterCreationFailed) -> None:
    router = router_record(state, env)
    router.creation_fault = event.reason
    _sync_users(state, router)


@folds.on(l3.RouterInterfaceRequested)
def _interface_requested(
    state: GatewayState, env: Envelope, event: l3.RouterInterfaceRequested
) -> None:
    router = router_record(state, env)
    if event.network_id not in router.interfaces:
        router.pending[event.network_id] = True
    router.interface_fault = None


@folds.on(l3.RouterInterfaceAdded)
def _interface_added(state: GatewayState, env: Envelope, event: l3.RouterInterfaceAdded) -> None:
    router = router_record(state, env)
    router.interfaces[event.network_id] = event.gateway_ip
    router.pending.pop(event.network_id, None)
    _attach(state, router, event.network_id, True, event.snat_ip)


@folds.on(l3.RouterInterfaceAdditionFailed)
def _interface_addition_failed(
    state: GatewayState, env: Envelope, event: l3.RouterInterfaceAdditionFailed
) -> None:
    router = router_record(state, env)
    router.pending.pop(event.network_id, None)
    router.interface_fault = event.reason


@folds.on(l3.RouterInterfaceRemovalRequested)
def _removal_requested(
    state: GatewayState, env: Envelope, event: l3.RouterInterfaceRemovalRequested
) -> None:
    router = router_record(state, env)
    if event.network_id in router.interfaces:
        router.pending[event.network_id] = False
    router.interface_fault = None


@folds.on(l3.RouterInterfaceRemoved)
def _interface_removed(
    state: GatewayState, env: Envelope, event: l3.RouterInterfaceRemoved
) -> None:
    router = router_record(state, env)
    router.interfaces.pop(event.network_id, None)
    router.pending.pop(event.network_id, None)
    _attach(state, router, event.network_id, False)


@folds.on(l3.RouterInterfaceRemovalFailed)
def _removal_failed(
    state: GatewayState, env: Envelope, event: l3.RouterInterfaceRemovalFailed
) -> None:
    router = router_record(state, env)
    router.pending.pop(event.network_id, None)
    router.interface_fault = event.reason


@folds.on(l3.RouterDeletionRequested)
def _deletion_requested(
    state: GatewayState, env: Envelope, event: l3.RouterDeletionRequested
) -> None:
    router_record(state, env).deletion_requests += 1


@folds.on(l3.RouterDeletionFailed)
def _deletion_failed(state: GatewayState, env: Envelope, event: l3.RouterDeletionFailed) -> None:
    router = router_record(state, env)
    router.deletion_failures += 1
    router.deletion_fault = event.reason


@folds.on(l3.RouterDeleted)
def _deleted(state: GatewayState, env: Envelope, event: l3.RouterDeleted) -> None:
    router = router_record(state, env)
    router.deleted = True
    router.deleted_at = earliest(router.deleted_at, env.occurred_at)
    for network_id in list(router.interfaces):
        _attach(state, router, network_id, False)
    _sync_users(state, router)
