"""Response bodies of tenants and tokens, built from the projection."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.tenants.model import Tenant


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class TenantView(_View):
    id: str
    name: str


class TenantList(_View):
    items: list[TenantView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


class IssuedToken(_View):
    id: str
    token: str
    """The bearer token. Shown in this response only: the gateway keeps just its hash."""
    expires_at: datetime | None


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(id=tenant.id, name=tenant.name)
