"""Reads of networks, ports and security groups as a principal may see them."""

from __future__ import annotations

from virga_events.catalog.network import default_security_group_id
from virga_gateway.auth import Principal
from virga_gateway.model import GatewayState
from virga_gateway.network_model import Network, Port
from virga_gateway.network_views import (
    NetworkList,
    PortList,
    SecurityGroupList,
    SecurityGroupView,
    default_group_view,
    network_view,
    port_view,
    security_group_view,
)
from virga_gateway.problems import FieldError, conflict, not_found


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


def list_networks(state: GatewayState, principal: Principal) -> NetworkList:
    networks = sorted(
        (
            n
            for n in state.networks.values()
            if n.requested and not n.deleted and principal.sees(n.tenant_id)
        ),
        key=lambda n: (n.created_at, n.id),
    )
    return NetworkList(items=[network_view(n) for n in networks])


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


def default_group_owner(state: GatewayState, principal: Principal, group_id: str) -> str | None:
    """The tenant whose default group `group_id` is, if the caller sees that tenant."""
    tenants = state.tenants if principal.is_admin else [principal.tenant_id or ""]
    for tenant_id in tenants:
        if default_security_group_id(tenant_id) == group_id:
            return tenant_id
    return None


def find_security_group(
    state: GatewayState, principal: Principal, group_id: str
) -> SecurityGroupView:
    group = state.security_groups.get(group_id)
    if group is not None and principal.sees(group.tenant_id):
        return security_group_view(group)
    owner = default_group_owner(state, principal, group_id)
    if owner is None:
        raise not_found("security group", group_id)
    return default_group_view(owner)


def list_security_groups(state: GatewayState, principal: Principal) -> SecurityGroupList:
    """The caller's default group first (every tenant's, for admins), then the others."""
    tenants = sorted(state.tenants) if principal.is_admin else [principal.tenant_id or ""]
    defaults = [default_group_view(t) for t in tenants]
    groups = sorted(
        (g for g in state.security_groups.values() if principal.sees(g.tenant_id)),
        key=lambda g: (g.created_at, g.id),
    )
    return SecurityGroupList(items=defaults + [security_group_view(g) for g in groups])


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
    if len(network.ports) >= network.pool_size:
        raise conflict(
            f"no free address left in the allocation pools of network {network_id}"
            f" ({network.cidr})",
            field,
        )
    return network, []


def check_instance_network(
    state: GatewayState, tenant_id: str, network_id: str
) -> list[FieldError]:
    """Why an instance of `tenant_id` cannot get a port on `network_id` (409 if it is full)."""
    return usable_network(state, tenant_id, network_id, "network")[1]
