"""The projection's record of a keypair, and the aggregate id that names it."""

from __future__ import annotations

from datetime import datetime

import msgspec


def keypair_id(tenant_id: str, name: str) -> str:
    """The aggregate id of a tenant's keypair: names are the tenant's own, as in Nova."""
    return f"{tenant_id}/{name}"


class Keypair(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """`keypair_id(tenant_id, name)`."""
    name: str
    tenant_id: str
    public_key: str
    fingerprint: str
    type: str
    created_at: datetime
