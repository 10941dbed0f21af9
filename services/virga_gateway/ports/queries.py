"""Reads of ports as a principal may see them."""

from __future__ import annotations

from collections.abc import Sequence

from virga_gateway.auth import Principal
from virga_gateway.cursor import OrderKey, owned, take_page
from virga_gateway.ports.model import Port
from virga_gateway.ports.views import PortList, PortView, port_view
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState


def find_port(state: GatewayState, principal: Principal, port_id: str) -> Port:
    port = state.ports.get(port_id)
    if port is None or not port.requested or port.deleted or not principal.sees(port.tenant_id):
        raise not_found("port", port_id)
    return port


def list_ports(
    state: GatewayState,
    principal: Principal,
    *,
    limit: int,
    after: OrderKey | None = None,
    network_id: str | None = None,
    instance_id: str | None = None,
) -> PortList:
    """One page, oldest first, of the caller's ports, or of one network's: a network's index
    is walked then, its ports checked to be the caller's; `instance_id`: only its ports."""

    def shown(key: OrderKey) -> PortView | None:
        port = state.ports.get(key[1])
        if port is None or port.deleted or not principal.sees(port.tenant_id):
            return None
        if network_id is not None and port.network_id != network_id:
            return None
        if instance_id is not None and port.instance_id != instance_id:
            return None
        return port_view(port)

    if network_id is not None:
        orders: list[Sequence[OrderKey]] = [state.network_port_order.get(network_id, ())]
    else:
        orders = owned(state.tenant_port_order, principal.listed_tenant)
    items, next_cursor = take_page(orders, after, limit, shown)
    return PortList(items=items, next=next_cursor)
