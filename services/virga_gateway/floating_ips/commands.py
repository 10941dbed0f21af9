"""What floating IP requests decide, given the projection; the controller decides for good."""

from __future__ import annotations

from virga_events.catalog.l3 import (
    FloatingIpAssociationRequested,
    FloatingIpReleaseRequested,
    FloatingIpRequested,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.external_networks.queries import usable_external_network
from virga_gateway.floating_ips.bodies import CreateFloatingIp, UpdateFloatingIp
from virga_gateway.floating_ips.model import FloatingIp
from virga_gateway.floating_ips.queries import find_floating_ip
from virga_gateway.floating_ips.views import floating_ip_view
from virga_gateway.outcome import Outcome
from virga_gateway.ports.model import Port
from virga_gateway.problems import FieldError, conflict, invalid_fields
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_floating_ip(
    state: GatewayState, principal: Principal, body: CreateFloatingIp, fip_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors = usable_external_network(state, body.external_network_id, "external_network_id")
    if errors:
        raise invalid_fields(errors)
    event = FloatingIpRequested(external_network_id=body.external_network_id)
    return Outcome(
        202,
        (Emit(event, fip_id, tenant_id),),
        lambda s: floating_ip_view(s.floating_ips[fip_id]),
    )


def update_floating_ip(
    state: GatewayState, principal: Principal, fip_id: str, body: UpdateFloatingIp
) -> Outcome:
    fip = find_floating_ip(state, principal, fip_id)
    view = lambda s: floating_ip_view(s.floating_ips[fip_id])  # noqa: E731
    if fip.status in ("BUILDING", "ERROR", "DELETING"):
        raise conflict(f"floating IP {fip_id} is {fip.status}", "status")
    if body.port_id is None:
        if fip.port_id is None:
            return Outcome(202, (), view)
    else:
        port = state.ports.get(body.port_id)
        if port is None or not port.requested or not port.live or port.tenant_id != fip.tenant_id:
            raise invalid_fields([FieldError("port_id", f"no port {body.port_id}")])
        if fip.port_id == port.id:
            return Outcome(202, (), view)
        others = [other for other in port.floating_ips if other != fip_id]
        if others:
            raise conflict(
                f"port {port.id} already has floating IP {others[0]}: dissociate it first",
                "port_id",
            )
        if not port.ips:
            raise conflict(f"port {port.id} has no address yet; retry shortly", "port_id")
        _reachable(state, fip, port)
    event = FloatingIpAssociationRequested(port_id=body.port_id)
    return Outcome(202, (Emit(event, fip_id, fip.tenant_id),), view)


def _reachable(state: GatewayState, fip: FloatingIp, port: Port) -> None:
    """Traffic to a floating IP reaches a port only through a router of its network that is on
    the floating IP's external network (Neutron's rule); 409 naming `port_id` otherwise."""
    network = state.networks.get(port.network_id)
    router = state.routers.get(network.router_id or "") if network is not None else None
    if router is None or router.external_network_id != fip.external_network_id:
        raise conflict(
            f"network {port.network_id} of port {port.id} has no router on external network"
            f" {fip.external_network_id}: attach it to one (POST /v1/routers/{{id}}/interfaces)",
            "port_id",
        )


def delete_floating_ip(state: GatewayState, principal: Principal, fip_id: str) -> Outcome:
    fip = find_floating_ip(state, principal, fip_id)
    view = lambda s: floating_ip_view(s.floating_ips[fip_id])  # noqa: E731
    if fip.release_requested:
        return Outcome(202, (), view)
    return Outcome(202, (Emit(FloatingIpReleaseRequested(), fip_id, fip.tenant_id),), view)
