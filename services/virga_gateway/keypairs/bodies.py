"""The request body of an imported keypair, with its constraints."""

from __future__ import annotations

from typing import Annotated

import msgspec

from virga_gateway.keypairs.openssh import MAX_LINE
from virga_gateway.validation import Body, Name, Reference


class ImportKeypair(Body):
    name: Name
    public_key: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_LINE,
            description="One OpenSSH public key line, as in a .pub file: ssh-ed25519, ssh-rsa"
            " (2048 bits or more) or ecdsa-sha2-nistp256/384/521.",
        ),
    ]
    tenant_id: Reference | None = None
    """Required when an admin imports a keypair: the tenant that will own it."""
