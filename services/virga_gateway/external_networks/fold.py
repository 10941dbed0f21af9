"""How external network facts fold into the projection, in any topic order."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import l3
from virga_gateway.external_networks.model import ExternalNetwork
from virga_gateway.networks.model import PoolRecord
from virga_gateway.retention import earliest
from virga_ipam import SubnetError, external_pools, parse_subnet, pool_size
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def external_network_record(
    state: GatewayState, external_network_id: str, env: Envelope | None = None
) -> ExternalNetwork:
    """The external network (a stub until its request is folded), touched by `env` if given."""
    network = state.external_networks.get(external_network_id)
    if network is None:
        network = state.external_networks[external_network_id] = ExternalNetwork(
            id=external_network_id
        )
    if env is not None and (network.updated_at is None or env.occurred_at > network.updated_at):
        network.updated_at = env.occurred_at
    return network


@folds.on(l3.ExternalNetworkRequested)
def _requested(state: GatewayState, env: Envelope, event: l3.ExternalNetworkRequested) -> None:
    network = external_network_record(state, env.aggregate_id, env)
    if network.requested:
        return
    network.requested = True
    network.name, network.cidr, network.gateway_ip = event.name, event.cidr, event.gateway_ip
    network.host_interface = event.host_interface
    network.created_at = env.occurred_at
    bisect.insort(state.external_network_order, (env.occurred_at, network.id))
    if not network.created:  # the controller's pools (defaults filled in) win
        network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]
    try:
        subnet = parse_subnet(event.cidr)
        pairs = [(p.start, p.end) for p in event.allocation_pools]
        network.pool_size = pool_size(external_pools(subnet, event.gateway_ip, pairs)[1])
    except SubnetError:
        network.pool_size = 0  # the controller refuses it too


@folds.on(l3.ExternalNetworkCreated)
def _created(state: GatewayState, env: Envelope, event: l3.ExternalNetworkCreated) -> None:
    network = external_network_record(state, env.aggregate_id, env)
    network.created = True
    network.allocation_pools = [PoolRecord(p.start, p.end) for p in event.allocation_pools]


@folds.on(l3.ExternalNetworkCreationFailed)
def _creation_failed(
    state: GatewayState, env: Envelope, event: l3.ExternalNetworkCreationFailed
) -> None:
    external_network_record(state, env.aggregate_id, env).creation_fault = event.reason


@folds.on(l3.ExternalNetworkDeletionRequested)
def _deletion_requested(
    state: GatewayState, env: Envelope, event: l3.ExternalNetworkDeletionRequested
) -> None:
    external_network_record(state, env.aggregate_id, env).deletion_requests += 1


@folds.on(l3.ExternalNetworkDeletionFailed)
def _deletion_failed(
    state: GatewayState, env: Envelope, event: l3.ExternalNetworkDeletionFailed
) -> None:
    network = external_network_record(state, env.aggregate_id, env)
    network.deletion_failures += 1
    network.deletion_fault = event.reason


@folds.on(l3.ExternalNetworkDeleted)
def _deleted(state: GatewayState, env: Envelope, event: l3.ExternalNetworkDeleted) -> None:
    network = external_network_record(state, env.aggregate_id, env)
    network.deleted = True
    network.deleted_at = earliest(network.deleted_at, env.occurred_at)
