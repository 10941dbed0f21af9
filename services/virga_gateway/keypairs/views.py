"""Response bodies of keypairs."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.keypairs.model import Keypair


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class KeypairView(_View):
    name: str
    tenant_id: str
    fingerprint: str
    """``SHA256:<unpadded base64>``, as ``ssh-keygen -l`` shows it."""
    type: str
    """``ssh-ed25519``, ``ssh-rsa`` or ``ecdsa-sha2-nistp256/384/521``."""
    public_key: str
    """The key as one `authorized_keys` line (its comment kept, spaces normalised)."""
    created_at: datetime


class KeypairList(_View):
    items: list[KeypairView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def keypair_view(keypair: Keypair) -> KeypairView:
    return KeypairView(
        name=keypair.name,
        tenant_id=keypair.tenant_id,
        fingerprint=keypair.fingerprint,
        type=keypair.type,
        public_key=keypair.public_key,
        created_at=keypair.created_at,
    )
