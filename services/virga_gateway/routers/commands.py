"""What router requests decide, given the projection; the controller decides for good."""

from __future__ import annotations

from virga_events.catalog.l3 import (
    RouterDeletionRequested,
    RouterInterfaceRemovalRequested,
    RouterInterfaceRequested,
    RouterRequested,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.external_networks.queries import usable_external_network
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.routers.bodies import AddRouterInterface, CreateRouter
from virga_gateway.routers.model import Router
from virga_gateway.routers.queries import find_router
from virga_gateway.routers.views import router_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def create_router(
    state: GatewayState, principal: Principal, body: CreateRouter, router_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    errors = usable_external_network(state, body.external_network_id, "external_network_id")
    if errors:
        raise invalid_fields(errors)
    event = RouterRequested(name=body.name, external_network_id=body.external_network_id)
    view = lambda s: router_view(s.routers[router_id])  # noqa: E731
    return Outcome(202, (Emit(event, router_id, tenant_id),), view)


def _active(router: Router) -> None:
    if router.status != "ACTIVE":
        raise conflict(f"router {router.id} is {router.status}, not ACTIVE", "status")


def add_interface(
    state: GatewayState, principal: Principal, router_id: str, body: AddRouterInterface
) -> Outcome:
    router = find_router(state, principal, router_id)
    view = lambda s: router_view(s.routers[router_id])  # noqa: E731
    _active(router)
    network_id = body.network_id
    if network_id in router.interfaces or router.pending.get(network_id) is True:
        return Outcome(202, (), view)
    network = state.networks.get(network_id)
    if network is None or not network.requested or network.deleted:
        raise invalid_fields([FieldError("network_id", f"no network {network_id}")])
    if network.tenant_id != router.tenant_id:
        raise invalid_fields([FieldError("network_id", f"no network {network_id}")])
    if network.status != "ACTIVE":
        message = f"network {network_id} is {network.status}, not ACTIVE"
        raise invalid_fields([FieldError("network_id", message)])
    if network.router_id is not None:
        raise conflict(
            f"network {network_id} is attached to router {network.router_id}", "network_id"
        )
    event = RouterInterfaceRequested(network_id=network_id)
    return Outcome(202, (Emit(event, router_id, router.tenant_id),), view)


def floating_ips_behind(state: GatewayState, tenant_id: str, network_id: str) -> list[str]:
    """Ids of the tenant's floating IPs pointed at ports of the network."""
    behind = []
    for _, fip_id in state.tenant_floating_ip_order.get(tenant_id, ()):
        fip = state.floating_ips.get(fip_id)
        if fip is None or fip.released or fip.port_id is None:
            continue
        port = state.ports.get(fip.port_id)
        if port is not None and port.network_id == network_id:
            behind.append(fip_id)
    return behind


def remove_interface(
    state: GatewayState, principal: Principal, router_id: str, network_id: str
) -> Outcome:
    router = find_router(state, principal, router_id)
    view = lambda s: router_view(s.routers[router_id])  # noqa: E731
    if network_id not in router.interfaces and network_id not in router.pending:
        raise not_found("router interface", network_id)
    if router.pending.get(network_id) is not None:
        return Outcome(202, (), view)  # its change is on its way; ask again once it is done
    behind = floating_ips_behind(state, router.tenant_id, network_id)
    if behind:
        raise conflict(
            f"floating IPs point at ports of network {network_id}: {', '.join(behind)};"
            " dissociate them first",
            "floating_ips",
        )
    event = RouterInterfaceRemovalRequested(network_id=network_id)
    return Outcome(202, (Emit(event, router_id, router.tenant_id),), view)


def delete_router(state: GatewayState, principal: Principal, router_id: str) -> Outcome:
    router = find_router(state, principal, router_id)
    view = lambda s: router_view(s.routers[router_id])  # noqa: E731
    if router.status == "DELETING":
        return Outcome(202, (), view)
    if router.status == "BUILDING":
        raise conflict(f"router {router_id} is still being created; retry shortly", "status")
    networks = list(dict.fromkeys([*router.interfaces, *router.pending]))
    if networks:
        raise conflict(
            f"router {router_id} still has interfaces on: {', '.join(networks)}", "interfaces"
        )
    return Outcome(202, (Emit(RouterDeletionRequested(), router_id, router.tenant_id),), view)
