"""What network requests decide, given the projection.

The gateway checks what it can see (the CIDR, ownership, free addresses as far as it knows);
the network controller decides for good and says so with an event when it refuses.
"""

from __future__ import annotations

from virga_events.catalog.network import (
    AllocationPool,
    NetworkDeletionRequested,
    NetworkRequested,
)
from virga_gateway.auth import Principal, owning_tenant
from virga_gateway.networks.bodies import CreateNetwork
from virga_gateway.networks.model import Network
from virga_gateway.networks.queries import find_network
from virga_gateway.networks.views import network_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, conflict, invalid_fields
from virga_gateway.state import GatewayState
from virga_ipam import SubnetError, parse_subnet
from virga_runtime.service import Emit


def create_network(
    state: GatewayState, principal: Principal, body: CreateNetwork, network_id: str
) -> Outcome:
    tenant_id = owning_tenant(state, principal, body.tenant_id)
    try:
        subnet = parse_subnet(body.cidr)
        pools = subnet.pools([(p.start, p.end) for p in body.allocation_pools])
    except SubnetError as exc:
        raise invalid_fields([FieldError(exc.field, exc.message)]) from None
    given = tuple(
        AllocationPool(start=subnet.address(low), end=subnet.address(high)) for low, high in pools
    )
    event = NetworkRequested(
        name=body.name,
        cidr=str(subnet.network),
        allocation_pools=given if body.allocation_pools else (),
        dhcp=body.dhcp,
    )
    return Outcome(
        202,
        (Emit(event, network_id, tenant_id),),
        lambda s: network_view(s.networks[network_id]),
    )


def _users(state: GatewayState, network: Network) -> list[str]:
    """Ports on the network, and instances requested on it whose port is not made yet."""
    users = list(network.ports)
    for instance in state.instances.values():
        pending = not any(a.network == network.id for a in instance.addresses)
        if instance.network == network.id and instance.status != "DELETED" and pending:
            users.append(f"instance {instance.id}")
    return users


def delete_network(state: GatewayState, principal: Principal, network_id: str) -> Outcome:
    network = find_network(state, principal, network_id)
    view = lambda s: network_view(s.networks[network_id])  # noqa: E731
    if network.status == "DELETING":
        return Outcome(202, (), view)  # already on its way
    if network.status == "BUILDING":
        raise conflict(f"network {network_id} is still being created; retry shortly", "status")
    if network.router_id is not None:
        raise conflict(
            f"network {network_id} is attached to router {network.router_id}:"
            " remove the interface first",
            "router_id",
        )
    users = _users(state, network)
    if users:
        raise conflict(f"network {network_id} still has ports: {', '.join(users)}", "ports")
    emit = Emit(NetworkDeletionRequested(), network_id, network.tenant_id)
    return Outcome(202, (emit,), view)
