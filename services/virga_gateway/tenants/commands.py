"""What tenant and token requests decide, given the projection.

Pure: ids, the clock and the token secret come in as arguments.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from virga_events.catalog import api
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, Problem, conflict, not_found
from virga_gateway.state import GatewayState
from virga_gateway.tenants.bodies import CreateTenant, IssueToken, TenantAction
from virga_gateway.tenants.views import IssuedToken, TenantView, tenant_view
from virga_gateway.tokens import derive_token, token_sha256
from virga_runtime.service import Emit


def create_tenant(state: GatewayState, body: CreateTenant, tenant_id: str) -> Outcome:
    if any(t.name == body.name for t in state.tenants.values()):
        raise conflict(f"a tenant named {body.name} exists", "name")
    emit = Emit(api.TenantCreated(name=body.name), tenant_id, tenant_id)
    return Outcome(201, (emit,), lambda s: tenant_view(s.tenants[tenant_id]))


def issue_token(
    state: GatewayState,
    tenant_id: str,
    body: IssueToken,
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


def tenant_action(state: GatewayState, tenant_id: str, body: TenantAction) -> Outcome:
    """Disable or enable a tenant; asking for the state it is in changes nothing."""
    tenant = state.tenants.get(tenant_id)
    if tenant is None:
        raise not_found("tenant", tenant_id)
    enable = body.action == "enable"

    def answer(state: GatewayState) -> TenantView:
        return tenant_view(state.tenants[tenant_id])

    if tenant.enabled == enable:
        return Outcome(200, (), answer)
    event: api.TenantDisabled | api.TenantEnabled = (
        api.TenantEnabled() if enable else api.TenantDisabled(reason=body.reason)
    )
    return Outcome(200, (Emit(event, tenant_id, tenant_id),), answer)


OWNED = (
    "instances",
    "volumes",
    "snapshots",
    "images",
    "networks",
    "ports",
    "security_groups",
    "keypairs",
    "floating_ips",
    "routers",
)
"""The kinds of resources a tenant owns as its quotas count them (`quotas.model`): from their
request until their service reports them deleted (an instance's boot volume and port are part of
the instance). Besides: its server groups, and the volumes, images and networks that failed to
be made (floating IPs and routers too), which count against no quota but stay, in error, until
deleted."""


def owned(state: GatewayState, tenant_id: str) -> dict[str, int]:
    """Kind -> how many resources of that kind the tenant owns (kinds it owns none of: absent)."""
    usage = state.quota_usage.get(tenant_id, {})
    counts = {kind: usage[kind] for kind in OWNED if usage.get(kind, 0) > 0}
    failed = {
        "volumes": sum(
            1
            for v in state.volumes.values()
            if v.tenant_id == tenant_id and v.requested and not v.deleted
            and v.create_fault is not None and not v.created
        ),
        "images": sum(
            1
            for i in state.images.values()
            if i.tenant_id == tenant_id and i.requested and not i.deleted
            and i.import_fault is not None
        ),
        "networks": sum(
            1
            for n in state.networks.values()
            if n.tenant_id == tenant_id and n.requested and not n.deleted
            and n.creation_fault is not None
        ),
        "server_groups": sum(1 for g in state.server_groups.values() if g.tenant_id == tenant_id),
        "floating_ips": sum(
            1
            for f in state.floating_ips.values()
            if f.tenant_id == tenant_id and f.requested and not f.released
            and f.allocation_fault is not None
        ),
        "routers": sum(
            1
            for r in state.routers.values()
            if r.tenant_id == tenant_id and r.requested and not r.deleted
            and r.creation_fault is not None
        ),
    }  # fmt: skip
    for kind, count in failed.items():
        if count:
            counts[kind] = counts.get(kind, 0) + count
    return counts


def _counted(count: int, kind: str) -> str:
    """`2 instances`, `1 security group`: a kind's count as a person writes it."""
    words = kind.replace("_", " ")
    return f"{count} {words if count != 1 else words.removesuffix('s')}"


def delete_tenant(state: GatewayState, tenant_id: str) -> Outcome:
    """Delete a tenant that owns nothing; while it owns anything: 409 naming what, per kind."""
    if tenant_id not in state.tenants:
        raise not_found("tenant", tenant_id)
    counts = owned(state, tenant_id)
    if counts:
        listed = ", ".join(_counted(count, kind) for kind, count in counts.items())
        raise Problem(
            409,
            "conflict",
            "Conflict with the current state",
            f"tenant {tenant_id} still owns {listed}: delete them first",
            errors=[FieldError(kind, f"{count} not deleted") for kind, count in counts.items()],
        )
    return Outcome(204, (Emit(api.TenantDeleted(), tenant_id, tenant_id),))
