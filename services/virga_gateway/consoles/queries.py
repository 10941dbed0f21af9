"""Which agent a console ticket is relayed to: refused at once when the projection already
knows the ticket is bad. Pure."""

from __future__ import annotations

from datetime import datetime

from virga_gateway.consoles.model import ticket_sha256
from virga_gateway.problems import conflict, forbidden
from virga_gateway.state import GatewayState


def agent_endpoint(state: GatewayState, instance_id: str, ticket: str, now: datetime) -> str:
    """The agent's console server for this ticket; a Problem for a ticket known to be bad."""
    record = state.console_tickets.get(ticket_sha256(ticket))
    if (
        record is None
        or record.instance_id != instance_id
        or record.used
        or record.expires_at <= now
    ):
        raise forbidden("the console ticket is unknown, used or expired")
    host = state.hosts.get(record.host)
    if host is None or host.console_endpoint is None:
        raise conflict(f"host {record.host} serves no console")
    return host.console_endpoint
