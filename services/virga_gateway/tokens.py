"""Bearer-token crypto: derive a token from its id, hash it for storage, name the admin's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

TOKEN_PREFIX = "virga_"
"""Makes a leaked token recognisable to secret scanners."""

_ADMIN_TOKEN_NAMESPACE = uuid.UUID("0d8f6c2e-4a55-4c8e-9b7e-2f3f5d6a7b10")


def derive_token(secret: bytes, token_id: str) -> str:
    """The bearer token for `token_id`: HMAC-SHA256 under the gateway secret (256 bits).

    Deriving rather than drawing it lets an idempotent retry answer with the same token while
    the log holds only its hash; without the secret the token is as unguessable as a random one.
    """
    mac = hmac.new(secret, token_id.encode(), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def token_sha256(token: str) -> str:
    """What the log and the projection keep of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def admin_token_id(sha256: str) -> str:
    """A stable token id for the bootstrap admin token, so it is issued once per token."""
    return str(uuid.uuid5(_ADMIN_TOKEN_NAMESPACE, sha256))
