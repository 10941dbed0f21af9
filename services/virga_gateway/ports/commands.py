"""What port requests decide, given the projection (see `networks.commands`)."""

from __future__ import annotations

from virga_events.catalog.network import (
    PortDeletionRequested,
    PortRequested,
    PortSecurityGroupsChanged,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.networks.queries import usable_network
from virga_gateway.outcome import Outcome
from virga_gateway.ports.bodies import CreatePort, UpdatePort
from virga_gateway.ports.queries import find_port
from virga_gateway.ports.views import port_view
from virga_gateway.problems import FieldError, conflict, invalid_fields
from virga_gateway.security_groups.queries import unknown_groups
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_port(
    state: GatewayState, principal: Principal, body: CreatePort, port_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors: list[FieldError] = []
    if body.host is not None and not principal.is_admin:
        errors.append(FieldError("host", "only administrators choose a port's host"))
    errors += unknown_groups(state, tenant_id, body.security_groups, "security_groups")
    if errors:
        raise invalid_fields(errors)
    _, errors = usable_network(state, tenant_id, body.network_id, "network_id")
    if errors:
        raise invalid_fields(errors)
    event = PortRequested(
        network_id=body.network_id,
        name=body.name,
        security_groups=tuple(dict.fromkeys(body.security_groups)),
        host=body.host,
    )
    return Outcome(202, (Emit(event, port_id, tenant_id),), lambda s: port_view(s.ports[port_id]))


def delete_port(state: GatewayState, principal: Principal, port_id: str) -> Outcome:
    port = find_port(state, principal, port_id)
    view = lambda s: port_view(s.ports[port_id])  # noqa: E731
    if port.instance_id is not None:
        raise conflict(
            f"port {port_id} belongs to instance {port.instance_id}: delete the instance",
            "instance_id",
        )
    if port.status == "DELETING":
        return Outcome(202, (), view)
    return Outcome(202, (Emit(PortDeletionRequested(), port_id, port.tenant_id),), view)


def update_port(
    state: GatewayState, principal: Principal, port_id: str, body: UpdatePort
) -> Outcome:
    port = find_port(state, principal, port_id)
    view = lambda s: port_view(s.ports[port_id])  # noqa: E731
    if port.status == "DELETING":
        raise conflict(f"port {port_id} is being deleted", "status")
    errors = unknown_groups(state, port.tenant_id, body.security_groups, "security_groups")
    if errors:
        raise invalid_fields(errors)
    groups = tuple(dict.fromkeys(body.security_groups))
    if list(groups) == port.security_groups:
        return Outcome(200, (), view)
    event = PortSecurityGroupsChanged(security_groups=groups)
    return Outcome(200, (Emit(event, port_id, port.tenant_id),), view)
