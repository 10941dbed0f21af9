"""What a console request decides: the ticket's event and the answer. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from virga_events.catalog import api
from virga_gateway.auth import Principal
from virga_gateway.consoles.model import derive_ticket, ticket_sha256
from virga_gateway.consoles.views import ConsoleTicketView
from virga_gateway.instances.queries import find_instance
from virga_gateway.outcome import Outcome
from virga_gateway.problems import conflict
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def console_url(base: str, instance_id: str, ticket: str) -> str:
    """The WebSocket of the console: `base` is `ws://host:port` (or wss) of the gateway."""
    return f"{base}/v1/instances/{instance_id}/console/ws?ticket={ticket}"


def issue_ticket(
    state: GatewayState,
    principal: Principal,
    instance_id: str,
    *,
    ticket_id: str,
    now: datetime,
    secret: bytes,
    valid_seconds: float,
    base_url: str,
) -> Outcome:
    """A one-time ticket to the console of a RUNNING instance the caller sees (else 404), on a
    host whose agent serves consoles (else 409)."""
    instance = find_instance(state, principal, instance_id)
    if instance.status != "RUNNING":
        raise conflict(
            f"instance {instance_id} is {instance.status}: its console needs it RUNNING", "status"
        )
    host_name = instance.compute_host
    host = None if host_name is None else state.hosts.get(host_name)
    if host_name is None or host is None or host.console_endpoint is None:
        raise conflict(f"the host of instance {instance_id} serves no console")
    ticket = derive_ticket(secret, ticket_id)
    expires_at = now + timedelta(seconds=valid_seconds)
    event = api.ConsoleTicketIssued(
        host=host_name,
        ticket_sha256=ticket_sha256(ticket),
        expires_at=expires_at,
        principal=principal.scope,
    )
    view = ConsoleTicketView(
        id=ticket_id, url=console_url(base_url, instance_id, ticket), expires_at=expires_at
    )
    return Outcome(
        201,
        (Emit(event, instance_id, instance.tenant_id),),
        lambda _state: view,
        secret_fields=frozenset({"url"}),
    )
