"""Response bodies of tenants and tokens, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.tenants.model import Tenant, Token


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class TenantView(_View, omit_defaults=True):
    id: str
    name: str
    enabled: bool = True
    """False (shown only then): an admin disabled it; none of its tokens authenticates."""


class TenantList(_View):
    items: list[TenantView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


class IssuedToken(_View):
    id: str
    token: str
    """The bearer token. Shown in this response only: the gateway keeps just its hash."""
    expires_at: datetime | None


class TokenView(_View):
    """A token as an admin may see it: never the token, nor its digest."""

    id: str
    created_at: datetime | None
    expires_at: datetime | None
    revoked: bool
    revoked_at: datetime | None


class TokenList(_View):
    items: list[TokenView]
    next: str | None
    """Cursor of the next page; none: this is the last."""


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(id=tenant.id, name=tenant.name, enabled=tenant.enabled)


def token_view(token: Token) -> TokenView:
    return TokenView(
        id=token.id,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked=token.revoked,
        revoked_at=token.revoked_at,
    )
