"""Reads of ports as a principal may see them."""

from __future__ import annotations

from virga_gateway.auth import Principal
from virga_gateway.ports.model import Port
from virga_gateway.ports.views import PortList, port_view
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState


def find_port(state: GatewayState, principal: Principal, port_id: str) -> Port:
    port = state.ports.get(port_id)
    if port is None or not port.requested or port.deleted or not principal.sees(port.tenant_id):
        raise not_found("port", port_id)
    return port


def list_ports(
    state: GatewayState, principal: Principal, network_id: str | None = None
) -> PortList:
    ports = sorted(
        (
            p
            for p in state.ports.values()
            if p.requested
            and not p.deleted
            and principal.sees(p.tenant_id)
            and (network_id is None or p.network_id == network_id)
        ),
        key=lambda p: (p.created_at, p.id),
    )
    return PortList(items=[port_view(p) for p in ports])
