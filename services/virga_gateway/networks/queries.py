"""Reads of networks as a principal may see them, and whether a port can be made on one."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.networks.model import Network
from virga_gateway.networks.views import NetworkList, NetworkView, network_view
from virga_gateway.problems import FieldError, conflict, not_found
from virga_gateway.state import GatewayState


def find_network(state: GatewayState, principal: Principal, network_id: str) -> Network:
    """A requested, not deleted network of the caller's; 404 otherwise (deleted ones too)."""
    network = state.networks.get(network_id)
    if (
        network is None
        or not network.requested
        or network.deleted
        or not principal.sees(network.tenant_id)
    ):
        raise not_found("network", network_id)
    return network


def list_networks(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> NetworkList:
    """One page, oldest first, of the caller's networks (every tenant's for admins)."""

    def shown(key: OrderKey) -> NetworkView | None:
        network = state.networks.get(key[1])
        return None if network is None or network.deleted else network_view(network)

    orders = owned(state.tenant_network_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return NetworkList(items=items, next=next_cursor)


def usable_network(
    state: GatewayState, tenant_id: str, network_id: str, field: str
) -> tuple[Network | None, list[FieldError]]:
    """The tenant's network a port is to be made on, or the errors saying why it cannot be."""
    network = state.networks.get(network_id)
    if network is None or not network.requested or network.deleted:
        return None, [FieldError(field, f"no network {network_id}")]
    if network.tenant_id != tenant_id:
        return None, [FieldError(field, f"no network {network_id}")]
    if network.status != "ACTIVE":
        return None, [FieldError(field, f"network {network_id} is {network.status}, not ACTIVE")]
    # A router's SNAT port holds one of the pools' addresses too.
    if len(network.ports) + (network.snat_ip is not None) >= network.pool_size:
        raise conflict(
            f"no free address left in the allocation pools of network {network_id}"
            f" ({network.cidr})",
            field,
        )
    return network, []


def check_instance_network(
    state: GatewayState, tenant_id: str, network_id: str, field: str = "network_id"
) -> list[FieldError]:
    """Why an instance of `tenant_id` cannot get a port on `network_id` (409 if it is full)."""
    return usable_network(state, tenant_id, network_id, field)[1]
