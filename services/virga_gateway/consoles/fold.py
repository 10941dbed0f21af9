"""How console tickets fold into the projection: issued (api topic), used (the host's agent)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from virga_events import Envelope
from virga_events.catalog import api, compute
from virga_gateway.consoles.model import ConsoleTicket
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()

TICKET_LIMIT = 10_000
"""Bound of the tickets remembered; expired ones are dropped as new ones come."""


@folds.on(api.ConsoleTicketIssued)
def _issued(state: GatewayState, env: Envelope, event: api.ConsoleTicketIssued) -> None:
    tickets = state.console_tickets
    for digest in [d for d, t in tickets.items() if t.expires_at <= env.occurred_at]:
        del tickets[digest]
    if event.ticket_sha256 not in tickets:
        tickets[event.ticket_sha256] = ConsoleTicket(
            instance_id=env.aggregate_id, host=event.host, expires_at=event.expires_at
        )
    while len(tickets) > TICKET_LIMIT:
        del tickets[next(iter(tickets))]


@folds.on(compute.ConsoleSessionOpened)
def _opened(state: GatewayState, env: Envelope, event: compute.ConsoleSessionOpened) -> None:
    ticket = state.console_tickets.get(event.ticket_sha256)
    if ticket is not None:
        state.console_tickets[event.ticket_sha256] = msgspec.structs.replace(ticket, used=True)
