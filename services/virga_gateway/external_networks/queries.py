"""Reads of external networks: every caller sees them (tenants take addresses from them)."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, take_page
from virga_gateway.external_networks.model import ExternalNetwork
from virga_gateway.external_networks.views import (
    ExternalNetworkList,
    ExternalNetworkView,
    external_network_view,
)
from virga_gateway.problems import FieldError, conflict, not_found
from virga_gateway.state import GatewayState


def find_external_network(state: GatewayState, external_network_id: str) -> ExternalNetwork:
    network = state.external_networks.get(external_network_id)
    if network is None or not network.requested or network.deleted:
        raise not_found("external network", external_network_id)
    return network


def list_external_networks(
    state: GatewayState, principal: Principal, *, limit: int, after: OrderKey | None = None
) -> ExternalNetworkList:
    """One page, oldest first."""

    def shown(key: OrderKey) -> ExternalNetworkView | None:
        network = state.external_networks.get(key[1])
        if network is None or network.deleted:
            return None
        return external_network_view(network, admin=principal.is_admin)

    items, next_cursor = take_page([state.external_network_order], after, limit, shown)
    return ExternalNetworkList(items=items, next=next_cursor)


def usable_external_network(
    state: GatewayState, external_network_id: str, field: str
) -> list[FieldError]:
    """Why an address cannot be taken from the external network (409 if its pools are full)."""
    network = state.external_networks.get(external_network_id)
    if network is None or not network.requested or network.deleted:
        return [FieldError(field, f"no external network {external_network_id}")]
    if network.status != "ACTIVE":
        status = network.status
        return [FieldError(field, f"external network {external_network_id} is {status}")]
    if len(network.floating_ips) + len(network.routers) >= network.pool_size:
        raise conflict(
            f"no free address left in the pools of external network {external_network_id}"
            f" ({network.cidr})",
            field,
        )
    return []
