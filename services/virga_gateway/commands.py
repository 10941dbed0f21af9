"""What each write request decides, given the projection: events to append and the answer.

Pure: ids, the clock and the token secret come in as arguments, so every rule here is tested
without HTTP or Kafka. Problems raised here become 4xx answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import msgspec

from virga_events.catalog import Flavor, api
from virga_gateway import validation as v
from virga_gateway.auth import Principal
from virga_gateway.model import GatewayState, InstanceStatus
from virga_gateway.network_queries import check_instance_network
from virga_gateway.problems import FieldError, conflict, invalid_fields, not_found
from virga_gateway.queries import find_instance
from virga_gateway.tokens import derive_token, token_sha256
from virga_gateway.views import (
    IssuedToken,
    flavor_view,
    host_view,
    instance_view,
    ratios_view,
    server_group_view,
    tenant_view,
)
from virga_runtime.service import Emit

View = Callable[[GatewayState], msgspec.Struct]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decided write: append `emits` (all or none), then answer `status` with `view`."""

    status: int
    emits: tuple[Emit, ...] = ()
    view: View | None = None
    """The response body, built from the state that already includes `emits`."""
    secret_fields: frozenset[str] = field(default_factory=frozenset)
    """Response fields never stored with an Idempotency-Key record."""


def create_tenant(state: GatewayState, body: v.CreateTenant, tenant_id: str) -> Outcome:
    if any(t.name == body.name for t in state.tenants.values()):
        raise conflict(f"a tenant named {body.name} exists", "name")
    emit = Emit(api.TenantCreated(name=body.name), tenant_id, tenant_id)
    return Outcome(201, (emit,), lambda s: tenant_view(s.tenants[tenant_id]))


def issue_token(
    state: GatewayState,
    tenant_id: str,
    body: v.IssueToken,
    *,
    token_id: str,
    now: datetime,
    secret: bytes,
) -> Outcome:
    if tenant_id not in state.tenants:
        raise not_found("tenant", tenant_id)
    expires_at = None
    if body.expires_in_seconds is not None:
        expires_at = now + timedelta(seconds=body.expires_in_seconds)
    token = derive_token(secret, token_id)
    event = api.TokenIssued(token_sha256=token_sha256(token), role="tenant", expires_at=expires_at)
    return Outcome(
        201,
        (Emit(event, token_id, tenant_id),),
        lambda s: IssuedToken(id=token_id, token=token, expires_at=expires_at),
        frozenset({"token"}),
    )


def revoke_token(state: GatewayState, token_id: str) -> Outcome:
    token = state.tokens.get(token_id)
    if token is None:
        raise not_found("token", token_id)
    if token.revoked:
        return Outcome(204)
    return Outcome(204, (Emit(api.TokenRevoked(), token_id, token.tenant_id),))


def create_flavor(state: GatewayState, body: v.CreateFlavor) -> Outcome:
    if body.name in state.flavors:
        raise conflict(f"a flavor named {body.name} exists", "name")
    flavor = Flavor(name=body.name, vcpus=body.vcpus, ram_mb=body.ram_mb, disk_gb=body.disk_gb)
    emit = Emit(api.FlavorCreated(flavor=flavor), flavor.name, None)
    return Outcome(201, (emit,), lambda s: flavor_view(s.flavors[flavor.name]))


def _owner(state: GatewayState, principal: Principal, requested: str | None) -> str:
    """The tenant a new resource belongs to: the caller's, or the one an admin names."""
    if principal.is_admin:
        v.check(requested is not None, "tenant_id", "is required when an admin creates it")
        assert requested is not None
        v.check(requested in state.tenants, "tenant_id", f"no tenant {requested}")
        return requested
    assert principal.tenant_id is not None
    v.check(requested in (None, principal.tenant_id), "tenant_id", "tenants create for themselves")
    return principal.tenant_id


def create_instance(
    state: GatewayState, principal: Principal, body: v.CreateInstance, instance_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
    errors: list[FieldError] = []
    flavor = state.flavors.get(body.flavor)
    if flavor is None:
        errors.append(FieldError("flavor", f"no flavor named {body.flavor}"))
    if body.server_group is not None:
        group = state.server_groups.get(body.server_group)
        if group is None or group.tenant_id != tenant_id:
            errors.append(FieldError("server_group", f"no server group {body.server_group}"))
    if body.network is not None:
        errors.extend(check_instance_network(state, tenant_id, body.network))
    if body.image is not None:
        # Booting clones the image: another tenant's private image must not exist for this one.
        image = state.images.get(body.image)
        if (
            image is None
            or not image.requested
            or image.deleted
            or (image.visibility != "public" and image.tenant_id != tenant_id)
        ):
            errors.append(FieldError("image", f"no image {body.image}"))
    if errors:
        raise invalid_fields(errors)
    assert flavor is not None
    event = api.InstanceRequested(
        name=body.name,
        flavor=flavor,
        image=body.image,
        network=body.network,
        server_group=body.server_group,
        availability_zone=body.availability_zone,
        required_traits=tuple(body.required_traits),
        delete_on_termination=body.delete_on_termination,
    )
    emit = Emit(event, instance_id, tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))


_ACTION_NEEDS: dict[str, InstanceStatus] = {
    "start": "STOPPED",
    "stop": "RUNNING",
    "reboot": "RUNNING",
}


def instance_action(
    state: GatewayState, principal: Principal, instance_id: str, body: v.InstanceAction
) -> Outcome:
    instance = find_instance(state, principal, instance_id)
    needed = _ACTION_NEEDS[body.action]
    if instance.status != needed:
        raise conflict(
            f"cannot {body.action} instance {instance_id}: it is {instance.status},"
            f" and {body.action} needs {needed}",
            "status",
        )
    emit = Emit(api.InstanceActionRequested(action=body.action), instance_id, instance.tenant_id)
    return Outcome(202, (emit,), lambda s: instance_view(s.instances[instance_id]))


def delete_instance(state: GatewayState, principal: Principal, instance_id: str) -> Outcome:
    instance = find_instance(state, principal, instance_id)
    if instance.status == "DELETED":
        raise not_found("instance", instance_id)
    view: View = lambda s: instance_view(s.instances[instance_id])  # noqa: E731
    if instance.status == "DELETING":
        return Outcome(202, (), view)  # already on its way: asking again changes nothing
    emit = Emit(api.InstanceDeletionRequested(), instance_id, instance.tenant_id)
    return Outcome(202, (emit,), view)


def create_server_group(
    state: GatewayState, principal: Principal, body: v.CreateServerGroup, group_id: str
) -> Outcome:
    tenant_id = _owner(state, principal, body.tenant_id)
    event = api.ServerGroupCreated(name=body.name, policy=body.policy, scope=body.scope)
    return Outcome(
        201,
        (Emit(event, group_id, tenant_id),),
        lambda s: server_group_view(s, s.server_groups[group_id]),
    )


def host_action(state: GatewayState, name: str, body: v.HostAction) -> Outcome:
    host = state.hosts.get(name)
    if host is None or not host.registered:
        raise not_found("host", name)
    event: api.HostDisabled | api.HostEnabled = (
        api.HostDisabled(reason=body.reason) if body.action == "disable" else api.HostEnabled()
    )
    return Outcome(202, (Emit(event, name, None),), lambda s: host_view(s, s.hosts[name]))


def set_allocation_ratios(state: GatewayState, body: v.SetAllocationRatios) -> Outcome:
    scope = body.host or "*"
    if body.host is not None:
        host = state.hosts.get(body.host)
        v.check(host is not None and host.registered, "host", f"no host {body.host}")
    event = api.AllocationRatiosSet(cpu=body.cpu, ram=body.ram, disk=body.disk)
    return Outcome(
        200,
        (Emit(event, scope, None),),
        lambda s: ratios_view(scope, s.allocation_ratios[scope]),
    )
