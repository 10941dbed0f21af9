"""Console tickets in the gateway: who may have one, what the log keeps of it, which ones the
WebSocket route refuses before it bothers an agent."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.unit.gateway.events import at, envelope, fold, requested, scheduled

from virga_events import Envelope
from virga_events.catalog import api, compute
from virga_gateway.auth import Principal
from virga_gateway.consoles.commands import issue_ticket
from virga_gateway.consoles.model import derive_ticket, ticket_sha256
from virga_gateway.consoles.queries import agent_endpoint, log_endpoint
from virga_gateway.consoles.views import ConsoleTicketView
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState, restore, snapshot

ALICE = Principal("tok-a", "tenant", "t1")
BOB = Principal("tok-b", "tenant", "t2")
ADMIN = Principal("tok-admin", "admin", None)
SECRET = b"s" * 32


def registered(endpoint: str | None = "10.0.0.1:7070") -> Envelope:
    event = compute.HostRegistered(
        rack="r1", zone="az1", vcpus=4, ram_mb=4096, disk_gb=10, console_endpoint=endpoint
    )
    return envelope(event, "h1", producer="compute@h1")


def running(endpoint: str | None = "10.0.0.1:7070") -> GatewayState:
    started = envelope(compute.InstanceStarted(host="h1"), "i1", producer="compute@h1", seconds=2)
    return fold(registered(endpoint), requested("i1"), scheduled("i1"), started)


def issue(state: GatewayState, who: Principal = ALICE, ticket_id: str = "tk1") -> Envelope:
    outcome = issue_ticket(
        state,
        who,
        "i1",
        ticket_id=ticket_id,
        now=at(10),
        secret=SECRET,
        valid_seconds=60,
        base_url="ws://gw:8080",
    )
    assert outcome.status == 201
    [emit] = outcome.emits
    assert outcome.view is not None
    view = outcome.view(state)
    assert isinstance(view, ConsoleTicketView)
    ticket = derive_ticket(SECRET, ticket_id)
    assert view.url == f"ws://gw:8080/v1/instances/i1/console/ws?ticket={ticket}"
    assert view.expires_at == at(70)
    assert "url" in outcome.secret_fields  # never stored with an Idempotency-Key record
    return envelope(emit.payload, emit.aggregate_id, tenant=emit.tenant_id, seconds=10)


def test_the_owner_and_an_admin_get_a_ticket_whose_hash_alone_is_in_the_log() -> None:
    state = running()
    for who in (ALICE, ADMIN):
        issued = issue(state, who)
        event = issued.payload
        assert isinstance(event, api.ConsoleTicketIssued)
        ticket = derive_ticket(SECRET, "tk1")
        assert event.ticket_sha256 == ticket_sha256(ticket)
        assert ticket not in repr(event)
        assert (event.host, event.expires_at, event.principal) == ("h1", at(70), who.scope)
        assert issued.tenant_id == "t1"
    assert len(derive_ticket(SECRET, "tk1")) >= 4 + 43  # 256 bits, base64


def test_another_tenants_instance_does_not_exist() -> None:
    with pytest.raises(Problem) as refused:
        issue(running(), BOB)
    assert refused.value.status == 404


@pytest.mark.parametrize("endpoint", [None])
def test_an_instance_not_running_or_on_a_host_without_console_is_a_conflict(
    endpoint: str | None,
) -> None:
    building = fold(registered(), requested("i1"), scheduled("i1"))
    for state in (building, running(endpoint)):
        with pytest.raises(Problem) as refused:
            issue(state)
        assert refused.value.status == 409


def test_the_socket_refuses_unknown_foreign_used_and_expired_tickets() -> None:
    state = running()
    state = fold(issue(state), state=state)
    ticket = derive_ticket(SECRET, "tk1")
    assert agent_endpoint(state, "i1", ticket, at(11)) == "10.0.0.1:7070"
    refusals = [
        ("i1", "vct_made-up", at(11)),  # unknown
        ("i2", ticket, at(11)),  # another instance's
        ("i1", ticket, at(70)),  # expired
    ]
    for instance, given, now in refusals:
        with pytest.raises(Problem) as refused:
            agent_endpoint(state, instance, given, now)
        assert refused.value.status == 403
    opened = compute.ConsoleSessionOpened(
        host="h1", ticket_sha256=ticket_sha256(ticket), session_id="s1"
    )
    state = fold(envelope(opened, "i1", producer="compute@h1", seconds=12), state=state)
    with pytest.raises(Problem) as used:
        agent_endpoint(state, "i1", ticket, at(13))
    assert used.value.status == 403


def test_tickets_are_in_the_instances_history_and_survive_a_snapshot() -> None:
    state = running()
    state = fold(issue(state), state=state)
    assert "ConsoleTicketIssued" in [e.type for e in state.instances["i1"].history]
    again = restore(snapshot(state))
    assert again.console_tickets == state.console_tickets
    assert again.hosts["h1"].console_endpoint == "10.0.0.1:7070"


def test_expired_tickets_are_forgotten_as_new_ones_come() -> None:
    state = running()
    state = fold(issue(state, ticket_id="old"), state=state)
    later = issue(state, ticket_id="new")
    later = envelope(later.payload, "i1", tenant="t1", seconds=10 + 61)
    state = fold(later, state=state)
    assert list(state.console_tickets) == [ticket_sha256(derive_ticket(SECRET, "new"))]
    assert timedelta(seconds=60) == state.console_tickets[
        ticket_sha256(derive_ticket(SECRET, "new"))
    ].expires_at - at(10)


def test_a_console_log_is_the_owners_or_an_admins_on_a_host_that_keeps_it() -> None:
    state = running()
    assert log_endpoint(state, ALICE, "i1") == "10.0.0.1:7070"
    assert log_endpoint(state, ADMIN, "i1") == "10.0.0.1:7070"
    with pytest.raises(Problem) as hidden:
        log_endpoint(state, BOB, "i1")
    assert hidden.value.status == 404
    for without in (running(None), fold(registered(), requested("i1"), scheduled("i1"))):
        with pytest.raises(Problem) as nowhere:
            log_endpoint(without, ALICE, "i1")
        assert nowhere.value.status == 409
