"""The projection's records of tenants and of the bearer tokens issued to them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

Role = Literal["admin", "tenant"]


class Tenant(msgspec.Struct):
    id: str
    name: str
    created_at: datetime
    enabled: bool = True
    """False once an admin disabled it: none of its tokens authenticates; resources stay."""


class Token(msgspec.Struct):
    id: str
    sha256: str
    role: Role
    tenant_id: str | None
    """The tenant a tenant token acts for; None for admin tokens."""
    expires_at: datetime | None = None
    revoked: bool = False
    created_at: datetime | None = None
    """When it was issued (None only in snapshots taken before this was kept)."""
    revoked_at: datetime | None = None
