"""What network, port and security group requests decide, given the projection.

The gateway checks what it can see (the CIDR, ownership, free addresses as far as it knows);
the network controller decides for good and says so with an event when it refuses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from virga_events.catalog.network import (
    AllocationPool,
    NetworkDeletionRequested,
    NetworkRequested,
    PortDeletionRequested,
    PortRequested,
    SecurityGroupCreated,
    SecurityGroupDeleted,
    SecurityGroupRule,
    default_security_group_id,
)
from virga_gateway.auth import Principal
from virga_gateway.commands import Outcome, _owner
from virga_gateway.model import GatewayState
from virga_gateway.network_bodies import CreateNetwork, CreatePort, CreateSecurityGroup, RuleBody
from virga_gateway.network_model import Network
from virga_gateway.network_queries import (
    default_group_owner,
    find_network,
    find_port,
    usable_network,
)
from virga_gateway.network_views import network_view, port_view, security_group_view
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_ipam import SubnetError, parse_subnet
from virga_runtime.service import Emit


def create_network(
    state: GatewayState, principal: Principal, body: CreateNetwork, network_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
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
    users = _users(state, network)
    if users:
        raise conflict(f"network {network_id} still has ports: {', '.join(users)}", "ports")
    emit = Emit(NetworkDeletionRequested(), network_id, network.tenant_id)
    return Outcome(202, (emit,), view)


def create_port(
    state: GatewayState, principal: Principal, body: CreatePort, port_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
    errors: list[FieldError] = []
    if body.host is not None and not principal.is_admin:
        errors.append(FieldError("host", "only administrators choose a port's host"))
    errors += _unknown_groups(state, tenant_id, body.security_groups, "security_groups")
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


def _unknown_groups(
    state: GatewayState, tenant_id: str, groups: Sequence[str], field: str
) -> list[FieldError]:
    default = default_security_group_id(tenant_id)
    errors = []
    for index, group_id in enumerate(groups):
        group = state.security_groups.get(group_id)
        if group_id != default and (group is None or group.tenant_id != tenant_id):
            errors.append(FieldError(f"{field}[{index}]", f"no security group {group_id}"))
    return errors


def _rule_errors(
    state: GatewayState, tenant_id: str, index: int, rule: RuleBody
) -> list[FieldError]:
    at = f"rules[{index}]"
    errors: list[FieldError] = []
    if rule.protocol in ("tcp", "udp"):
        if rule.port_max is not None and rule.port_min is None:
            errors.append(FieldError(f"{at}.port_min", "is required with port_max"))
        elif rule.port_max is not None and rule.port_max < (rule.port_min or 0):
            errors.append(FieldError(f"{at}.port_max", "must not be below port_min"))
    elif rule.port_min is not None or rule.port_max is not None:
        errors.append(FieldError(f"{at}.port_min", "port ranges need protocol tcp or udp"))
    wanted = {"icmp": "IPv4", "icmpv6": "IPv6"}.get(rule.protocol)
    if wanted is not None and rule.ethertype != wanted:
        errors.append(FieldError(f"{at}.protocol", f"{rule.protocol} goes with {wanted}"))
    if rule.remote_cidr is not None and rule.remote_group is not None:
        errors.append(FieldError(f"{at}.remote_group", "give remote_cidr or remote_group"))
    if rule.remote_cidr is not None:
        try:
            peers = ipaddress.ip_network(rule.remote_cidr, strict=False)
        except ValueError as exc:
            errors.append(FieldError(f"{at}.remote_cidr", str(exc)))
        else:
            if f"IPv{peers.version}" != rule.ethertype:
                errors.append(FieldError(f"{at}.remote_cidr", f"is not {rule.ethertype}"))
    if rule.remote_group is not None:
        errors += _unknown_groups(state, tenant_id, [rule.remote_group], f"{at}.remote_group")
        if errors and errors[-1].field.startswith(f"{at}.remote_group["):
            errors[-1] = FieldError(f"{at}.remote_group", errors[-1].message)
    return errors


def create_security_group(
    state: GatewayState, principal: Principal, body: CreateSecurityGroup, group_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
    errors = [e for i, r in enumerate(body.rules) for e in _rule_errors(state, tenant_id, i, r)]
    if errors:
        raise invalid_fields(errors)
    rules = tuple(
        SecurityGroupRule(
            direction=r.direction,
            ethertype=r.ethertype,
            protocol=r.protocol,
            port_min=r.port_min,
            port_max=r.port_max if r.port_max is not None else r.port_min,
            remote_cidr=(
                str(ipaddress.ip_network(r.remote_cidr, strict=False)) if r.remote_cidr else None
            ),
            remote_group=r.remote_group,
        )
        for r in body.rules
    )
    event = SecurityGroupCreated(name=body.name, rules=rules)
    return Outcome(
        201,
        (Emit(event, group_id, tenant_id),),
        lambda s: security_group_view(s.security_groups[group_id]),
    )


def delete_security_group(state: GatewayState, principal: Principal, group_id: str) -> Outcome:
    group = state.security_groups.get(group_id)
    if group is None or not principal.sees(group.tenant_id):
        if default_group_owner(state, principal, group_id) is not None:
            raise conflict("a tenant's default security group cannot be deleted", "id")
        raise not_found("security group", group_id)
    users = [
        p.id
        for p in state.ports.values()
        if p.live and p.requested and group_id in p.security_groups
    ]
    if users:
        raise conflict(f"security group {group_id} is used by ports: {', '.join(users)}", "ports")
    referrers = [
        g.id
        for g in state.security_groups.values()
        if g.id != group_id and any(r.remote_group == group_id for r in g.rules)
    ]
    if referrers:
        detail = f"security group {group_id} is the remote group of: {', '.join(referrers)}"
        raise conflict(detail, "rules")
    return Outcome(204, (Emit(SecurityGroupDeleted(), group_id, group.tenant_id),))
