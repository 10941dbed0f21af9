"""Console tickets as this agent folds them from the log, and the one rule that opens a session.

The gateway hands a tenant a one-time ticket and records only its hash (ConsoleTicketIssued,
in `<ns>.api`). The agent of the ticket's host believes the log, not the gateway: a session
opens for a ticket whose hash it has folded for this host and this instance, before it
expires, and only once — `open_session` records ConsoleSessionOpened, and the fold marks the
ticket used, so a second try with it is refused whatever the gateway says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from virga_compute.core.model import ComputeState, ConsoleTicket
from virga_events import Envelope
from virga_events.catalog.api import ConsoleTicketIssued
from virga_events.catalog.compute import ConsoleSessionOpened
from virga_runtime.folding import Folds
from virga_runtime.service import Emit, Intent

TICKET_LIMIT = 10_000
"""Bound of the tickets kept (oldest dropped first); expired ones are dropped as new come."""

folds: Folds[ComputeState] = Folds()


@dataclass(frozen=True, slots=True)
class ConsoleOpen:
    """A signal from the console server: someone presents a ticket for an instance."""

    instance_id: str
    ticket_sha256: str
    session_id: str
    at: datetime


@folds.on(ConsoleTicketIssued)
def _issued(state: ComputeState, envelope: Envelope, event: ConsoleTicketIssued) -> None:
    if event.host != state.host:
        return
    tickets = state.console_tickets
    for digest in [d for d, t in tickets.items() if t.expires_at <= envelope.occurred_at]:
        del tickets[digest]
    tickets.setdefault(
        event.ticket_sha256,
        ConsoleTicket(envelope.aggregate_id, envelope.tenant_id, event.expires_at),
    )
    while len(tickets) > TICKET_LIMIT:
        del tickets[next(iter(tickets))]


@folds.on(ConsoleSessionOpened)
def _opened(state: ComputeState, envelope: Envelope, event: ConsoleSessionOpened) -> None:
    ticket = state.console_tickets.get(event.ticket_sha256)
    if ticket is not None and ticket.session_id is None:
        ticket.session_id = event.session_id


def refusal(state: ComputeState, instance_id: str, ticket_sha256: str, at: datetime) -> str | None:
    """Why a session on this ticket must not open now; None if it may."""
    ticket = state.console_tickets.get(ticket_sha256)
    if ticket is None or ticket.instance_id != instance_id:
        return "unknown ticket"
    if ticket.session_id is not None:
        return "ticket already used"
    if at >= ticket.expires_at:
        return "ticket expired"
    record = state.instances.get(instance_id)
    if record is None or record.status != "running" or record.deletion_event_id is not None:
        return "instance not running here"
    return None


def open_session(state: ComputeState, signal: ConsoleOpen) -> Sequence[Intent]:
    """Record the session if the ticket lets it in (the fold then marks the ticket used)."""
    if refusal(state, signal.instance_id, signal.ticket_sha256, signal.at) is not None:
        return []
    ticket = state.console_tickets[signal.ticket_sha256]
    opened = ConsoleSessionOpened(
        host=state.host, ticket_sha256=signal.ticket_sha256, session_id=signal.session_id
    )
    return [Emit(opened, signal.instance_id, ticket.tenant_id)]


def session_of(state: ComputeState, ticket_sha256: str) -> str | None:
    """The session the ticket opened, if any."""
    ticket = state.console_tickets.get(ticket_sha256)
    return None if ticket is None else ticket.session_id
