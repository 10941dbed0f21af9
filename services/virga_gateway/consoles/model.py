"""The projection's console tickets: by hash, what they open and until when."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

import msgspec

TICKET_PREFIX = "vct_"


class ConsoleTicket(msgspec.Struct, frozen=True, kw_only=True):
    """A ticket issued (ConsoleTicketIssued), by its sha256 in `GatewayState.console_tickets`."""

    instance_id: str
    host: str
    expires_at: datetime
    used: bool = False
    """Its host's agent opened a session on it (ConsoleSessionOpened)."""


def derive_ticket(secret: bytes, ticket_id: str) -> str:
    """The ticket of `ticket_id`: HMAC-SHA256 under the gateway secret (256 bits), so that an
    idempotent retry answers with the same ticket while the log holds only its hash."""
    mac = hmac.new(secret, f"console-ticket:{ticket_id}".encode(), hashlib.sha256).digest()
    return TICKET_PREFIX + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def ticket_sha256(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()
