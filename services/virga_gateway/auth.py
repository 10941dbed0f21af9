"""Who is calling: bearer tokens resolved against the projection into a principal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from virga_gateway import validation as v
from virga_gateway.problems import forbidden, tenant_deleted, tenant_disabled, unauthorized
from virga_gateway.state import GatewayState
from virga_gateway.tenants.model import Role
from virga_gateway.tokens import token_sha256


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller of one request."""

    token_id: str
    role: Role
    tenant_id: str | None
    """The tenant a tenant token acts for; None for admins."""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def scope(self) -> str:
        """Whose Idempotency-Keys these are: a tenant's tokens share them, as do admins'."""
        return "admin" if self.is_admin else f"tenant:{self.tenant_id}"

    @property
    def listed_tenant(self) -> str | None:
        """Whose resources a listing walks: the tenant's own; None (every tenant's) for admins."""
        return None if self.is_admin else self.tenant_id or ""

    def sees(self, tenant_id: str) -> bool:
        """Whether a resource of `tenant_id` exists for this caller (else it gets 404)."""
        return self.is_admin or tenant_id == self.tenant_id

    def require_admin(self) -> None:
        if not self.is_admin:
            raise forbidden("this operation is reserved to administrators")


def authenticate(state: GatewayState, authorization: str | None, now: datetime) -> Principal:
    """The principal an `Authorization: Bearer <token>` header names, or a 401 problem."""
    if not authorization:
        raise unauthorized("the Authorization header is missing")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    token_id = state.token_ids_by_sha256.get(token_sha256(token.strip()))
    record = state.tokens.get(token_id) if token_id is not None else None
    # One message for every refusal: a caller learns nothing about which tokens exist.
    refused = unauthorized("the bearer token is not valid")
    if record is None or record.revoked:
        raise refused
    if record.expires_at is not None and record.expires_at <= now:
        raise refused
    if record.tenant_id is not None and record.tenant_id in state.deleted_tenants:
        raise tenant_deleted()
    tenant = state.tenants.get(record.tenant_id) if record.tenant_id is not None else None
    if tenant is not None and not tenant.enabled:
        # 401 as for any token that no longer authenticates; every route documents it.
        raise tenant_disabled()
    return Principal(record.id, record.role, record.tenant_id)


def correlation_id_for(principal: Principal, client_request_id: str, made: str) -> str:
    """The correlation id of a request's events: never one another tenant can also produce.

    A client's X-Request-Id is namespaced under its caller (`tenant:<id>:<request id>`,
    `admin:<request id>`), so two tenants sending the same id never share a correlation, and
    `virga audit trace` of one never shows the other's events. An id the gateway made (`made`,
    a fresh uuid, when `client_request_id` is empty) is used as it is.
    """
    if not client_request_id:
        return made
    return f"{principal.scope}:{client_request_id}"


def owning_tenant(state: GatewayState, principal: Principal, requested: str | None) -> str:
    """The tenant a new resource belongs to: the caller's, or the one an admin names."""
    if principal.is_admin:
        v.check(requested is not None, "tenant_id", "is required when an admin creates it")
        assert requested is not None
        v.check(requested in state.tenants, "tenant_id", f"no tenant {requested}")
        return requested
    assert principal.tenant_id is not None
    v.check(requested in (None, principal.tenant_id), "tenant_id", "tenants create for themselves")
    return principal.tenant_id
