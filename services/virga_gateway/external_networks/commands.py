"""What external network requests decide, given the projection (admins only)."""

from __future__ import annotations

from virga_events.catalog.l3 import ExternalNetworkDeletionRequested, ExternalNetworkRequested
from virga_events.catalog.network import AllocationPool
from virga_gateway.auth import Principal
from virga_gateway.external_networks.bodies import CreateExternalNetwork
from virga_gateway.external_networks.queries import find_external_network
from virga_gateway.external_networks.views import external_network_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, conflict, invalid_fields
from virga_gateway.state import GatewayState
from virga_ipam import SubnetError, check_interface_name, external_pools, parse_subnet
from virga_runtime.service import Emit


def create_external_network(
    state: GatewayState, principal: Principal, body: CreateExternalNetwork, network_id: str
) -> Outcome:
    principal.require_admin()
    try:
        check_interface_name(body.host_interface)
        subnet = parse_subnet(body.cidr)
        _, pools = external_pools(
            subnet, body.gateway_ip, [(p.start, p.end) for p in body.allocation_pools]
        )
    except SubnetError as exc:
        raise invalid_fields([FieldError(exc.field, exc.message)]) from None
    given = tuple(
        AllocationPool(start=subnet.address(low), end=subnet.address(high)) for low, high in pools
    )
    event = ExternalNetworkRequested(
        name=body.name,
        cidr=str(subnet.network),
        gateway_ip=body.gateway_ip,
        allocation_pools=given if body.allocation_pools else (),
        host_interface=body.host_interface,
    )
    return Outcome(
        202,
        (Emit(event, network_id, None),),
        lambda s: external_network_view(s.external_networks[network_id], admin=True),
    )


def delete_external_network(state: GatewayState, principal: Principal, network_id: str) -> Outcome:
    principal.require_admin()
    network = find_external_network(state, network_id)
    view = lambda s: external_network_view(s.external_networks[network_id], admin=True)  # noqa: E731
    if network.status == "DELETING":
        return Outcome(202, (), view)
    if network.status == "BUILDING":
        raise conflict(f"external network {network_id} is still being created", "status")
    for field, users in (("floating_ips", network.floating_ips), ("routers", network.routers)):
        if users:
            raise conflict(
                f"external network {network_id} is in use by {field}: {', '.join(users)}", field
            )
    return Outcome(202, (Emit(ExternalNetworkDeletionRequested(), network_id, None),), view)
