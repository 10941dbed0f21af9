"""The answer to a console request."""

from __future__ import annotations

from datetime import datetime

import msgspec


class ConsoleLogView(msgspec.Struct, frozen=True, kw_only=True):
    lines: list[str]
    """The last lines of the guest's serial output, oldest first, without line ends."""


class ConsoleTicketView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The ticket's id (its value is derived from it and never stored)."""
    url: str
    """The WebSocket to open, ticket included: valid once, until `expires_at`."""
    expires_at: datetime
