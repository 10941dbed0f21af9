"""How tenant and token facts fold into the projection."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

import msgspec

from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway.tenants.model import Tenant, Token
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(api.TenantCreated)
def _tenant_created(state: GatewayState, env: Envelope, event: api.TenantCreated) -> None:
    if env.aggregate_id in state.tenants or env.aggregate_id in state.deleted_tenants:
        return  # a duplicate
    state.tenants[env.aggregate_id] = Tenant(env.aggregate_id, event.name, env.occurred_at)
    bisect.insort(state.tenant_order, (env.occurred_at, env.aggregate_id))


@folds.on(api.TokenIssued)
def _token_issued(state: GatewayState, env: Envelope, event: api.TokenIssued) -> None:
    token = Token(
        env.aggregate_id,
        event.token_sha256,
        event.role,
        env.tenant_id,
        event.expires_at,
        created_at=env.occurred_at,
    )
    state.tokens[token.id] = token
    state.token_ids_by_sha256[token.sha256] = token.id


@folds.on(api.TokenRevoked)
def _token_revoked(state: GatewayState, env: Envelope, event: api.TokenRevoked) -> None:
    token = state.tokens.get(env.aggregate_id)
    if token is not None and not token.revoked:
        token.revoked = True
        token.revoked_at = env.occurred_at


@folds.on(api.TenantDisabled)
def _tenant_disabled(state: GatewayState, env: Envelope, event: api.TenantDisabled) -> None:
    _set_enabled(state, env.aggregate_id, False)


@folds.on(api.TenantEnabled)
def _tenant_enabled(state: GatewayState, env: Envelope, event: api.TenantEnabled) -> None:
    _set_enabled(state, env.aggregate_id, True)


def _set_enabled(state: GatewayState, tenant_id: str, enabled: bool) -> None:
    tenant = state.tenants.get(tenant_id)
    if tenant is not None:
        # Replaced, never mutated: previews share the tenants table (state.PREVIEW_COPIES).
        state.tenants[tenant_id] = msgspec.structs.replace(tenant, enabled=enabled)


@folds.on(api.TenantDeleted)
def _tenant_deleted(state: GatewayState, env: Envelope, event: api.TenantDeleted) -> None:
    tenant_id = env.aggregate_id
    state.deleted_tenants[tenant_id] = None
    state.quota_overrides.pop(tenant_id, None)
    tenant = state.tenants.pop(tenant_id, None)
    if tenant is None:
        return
    key = (tenant.created_at, tenant_id)
    at = bisect.bisect_left(state.tenant_order, key)
    if at < len(state.tenant_order) and state.tenant_order[at] == key:
        del state.tenant_order[at]  # (a preview has no listing to keep)
