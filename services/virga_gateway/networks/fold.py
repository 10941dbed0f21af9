"""How network facts fold into the projection, in any topic order."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import network as net
from virga_gateway.networks.model import Network, PoolRecord
from virga_gateway.retention import earliest
from virga_ipam import SubnetError, parse_subnet, pool_size
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def network_record(state: GatewayState, network_id: str, env: Envelope | None = None) -> Network:
    """The network (a stub if its request is not folded yet), touched by `env` if given."""
    network = state.networks.get(network_id)
    if network is None:
        network = state.networks[network_id] = Network(id=network_id)
    if env is not None and (network.updated_at is None or env.occurred_at > network.updated_at):
        network.updated_at = env.occurred_at
    return network


@folds.on(net.NetworkRequested)
def _network_requested(state: GatewayState, env: Envelope, event: net.NetworkRequested) -> None:
    network = network_record(state, env.aggregate_id, env)
    if network.requested:
        return
    network.requested = True
    network.tenant_id = env.tenant_id or ""
    network.name, network.cidr, network.dhcp = event.name, event.cidr, event.dhcp
    network.created_at = env.occurred_at
    key = (env.occurred_at, network.id)
    bisect.insort(state.tenant_network_order.setdefault(network.tenant_id, []), key)
    if not network.created:  # the controller's pools (defaults filled in) win
        network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]
    try:
        subnet = parse_subnet(event.cidr)
        pairs = [(p.start, p.end) for p in event.allocation_pools]
        network.pool_size = pool_size(subnet.pools(pairs))
    except SubnetError:
        network.pool_size = 0  # the controller refuses it too (NetworkCreationFailed)


@folds.on(net.NetworkCreated)
def _network_created(state: GatewayState, env: Envelope, event: net.NetworkCreated) -> None:
    network = network_record(state, env.aggregate_id, env)
    network.created, network.vni, network.gateway_ip = True, event.vni, event.gateway_ip
    network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]


@folds.on(net.NetworkCreationFailed)
def _network_creation_failed(
    state: GatewayState, env: Envelope, event: net.NetworkCreationFailed
) -> None:
    network_record(state, env.aggregate_id, env).creation_fault = event.reason


@folds.on(net.NetworkDeletionRequested)
def _network_deletion_requested(
    state: GatewayState, env: Envelope, event: net.NetworkDeletionRequested
) -> None:
    network_record(state, env.aggregate_id, env).deletion_requests += 1


@folds.on(net.NetworkDeletionFailed)
def _network_deletion_failed(
    state: GatewayState, env: Envelope, event: net.NetworkDeletionFailed
) -> None:
    network = network_record(state, env.aggregate_id, env)
    network.deletion_failures += 1
    network.deletion_fault = event.reason


@folds.on(net.NetworkDeleted)
def _network_deleted(state: GatewayState, env: Envelope, event: net.NetworkDeleted) -> None:
    network = network_record(state, env.aggregate_id, env)
    network.deleted = True
    network.deleted_at = earliest(network.deleted_at, env.occurred_at)
