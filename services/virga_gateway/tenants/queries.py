"""Reads of tenants and of their tokens (admins only: the routes say so)."""

from __future__ import annotations

from datetime import UTC, datetime

from virga_gateway.cursor import OrderKey, encode_cursor, take_page
from virga_gateway.problems import not_found
from virga_gateway.state import GatewayState
from virga_gateway.tenants.model import Token
from virga_gateway.tenants.views import (
    TenantList,
    TenantView,
    TokenList,
    tenant_view,
    token_view,
)

_LONG_AGO = datetime.min.replace(tzinfo=UTC)
"""Where tokens issued before their issue time was kept sort."""


def list_tenants(state: GatewayState, *, limit: int, after: OrderKey | None = None) -> TenantList:
    """One page of tenants, oldest first."""

    def shown(key: OrderKey) -> TenantView | None:
        tenant = state.tenants.get(key[1])
        return None if tenant is None else tenant_view(tenant)

    items, next_cursor = take_page([state.tenant_order], after, limit, shown)
    return TenantList(items=items, next=next_cursor)


def list_tokens(
    state: GatewayState, tenant_id: str, *, limit: int, after: OrderKey | None
) -> TokenList:
    """One page of the tenant's tokens, revoked and expired ones included, oldest first."""
    if tenant_id not in state.tenants:
        raise not_found("tenant", tenant_id)
    keyed = sorted(
        (_order_key(token), token)
        for token in state.tokens.values()
        if token.tenant_id == tenant_id
    )
    if after is not None:
        keyed = [(key, token) for key, token in keyed if key > after]
    page = keyed[:limit]
    next_cursor = encode_cursor(page[-1][0]) if len(keyed) > limit else None
    return TokenList(items=[token_view(token) for _, token in page], next=next_cursor)


def _order_key(token: Token) -> OrderKey:
    return (token.created_at or _LONG_AGO, token.id)
