"""Request bodies of tenants and tokens, with their constraints."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from virga_gateway.validation import Body, Name, Text


class CreateTenant(Body):
    name: Name


class IssueToken(Body):
    expires_in_seconds: Annotated[int, msgspec.Meta(ge=1, le=10 * 365 * 86400)] | None = None
    """Lifetime of the token; none: it lives until revoked."""


class TenantAction(Body):
    action: Literal["disable", "enable"]
    """disable: every token of the tenant is refused (401) until it is enabled; its resources
    stay."""
    reason: Text = ""
