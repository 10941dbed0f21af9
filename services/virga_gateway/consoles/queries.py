"""Which agent a console ticket is relayed to: refused at once when the projection already
knows the ticket is bad. Pure."""

from __future__ import annotations

from datetime import datetime

from virga_gateway.auth import Principal
from virga_gateway.consoles.model import ticket_sha256
from virga_gateway.instances.queries import find_instance
from virga_gateway.problems import conflict, forbidden
from virga_gateway.state import GatewayState


def log_endpoint(state: GatewayState, principal: Principal, instance_id: str) -> str:
    """The console server of the instance's host, for its console log (the owner's or an
    admin's: another tenant's instance is a 404)."""
    instance = find_instance(state, principal, instance_id)
    host = None if instance.compute_host is None else state.hosts.get(instance.compute_host)
    if host is None or host.console_endpoint is None:
        raise conflict(f"instance {instance_id} is on no host that keeps its console log")
    return host.console_endpoint


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
