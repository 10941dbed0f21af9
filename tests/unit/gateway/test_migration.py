"""Live migration at the gateway: who may ask, when, and how the flow shows on the instance."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.unit.gateway.events import at, envelope, fold, requested, scheduled

from virga_events import Envelope
from virga_events.catalog import api, compute, flows, scheduler
from virga_gateway.auth import Principal
from virga_gateway.consoles.commands import issue_ticket
from virga_gateway.instances.bodies import MigrateInstance
from virga_gateway.instances.commands import migrate_instance
from virga_gateway.instances.views import MigrationView, instance_view
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState

ADMIN = Principal("tok-admin", "admin", None)


def problem_of(thunk: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        thunk()
    return caught.value


def host(name: str, receives: bool = True) -> Envelope:
    registered = compute.HostRegistered(
        rack="r1",
        zone="az1",
        vcpus=8,
        ram_mb=8192,
        disk_gb=100,
        console_endpoint=f"{name}:7070",
        migration_uri=f"qemu+tcp://{name}/system" if receives else None,
    )
    return envelope(registered, name, producer=f"compute@{name}")


def running() -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        host("h1"),
        host("h2"),
        host("deaf", receives=False),
        requested("i1", tenant="t1"),
        scheduled("i1"),
        envelope(compute.InstanceStarted(host="h1"), "i1", producer="compute@h1", seconds=2),
    )


def asked(state: GatewayState, host: str | None = None) -> GatewayState:
    outcome = migrate_instance(state, ADMIN, "i1", MigrateInstance(host=host), "f-1")
    (emit,) = outcome.emits
    assert outcome.status == 202
    assert emit.payload == api.LiveMigrationRequested(host=host, flow_id="f-1")
    written = envelope(emit.payload, "i1", tenant="t1", seconds=3)
    state = fold(written, state=state)
    assert outcome.view is not None
    view = outcome.view(state)
    assert isinstance(view, MigrationView)
    assert view.flow_id == "f-1"
    return state


def test_the_instance_is_migrating_while_the_flow_runs_then_runs_on_the_destination() -> None:
    state = asked(running(), "h2")
    flow = "f-1"
    # Asked twice before the scheduler started it: the second is refused.
    assert (
        problem_of(lambda: migrate_instance(state, ADMIN, "i1", MigrateInstance(), "f-2")).status
        == 409
    )
    started = flows.FlowStarted(definition="live-migration", subject="i1", inputs={})
    state = fold(envelope(started, flow, producer="scheduler", seconds=4), state=state)
    assert state.instances["i1"].status == "MIGRATING"
    refused = problem_of(lambda: migrate_instance(state, ADMIN, "i1", MigrateInstance(), "f-2"))
    assert (refused.status, refused.detail) == (409, "instance i1 is already migrating")
    moved = compute.InstanceMigrated(
        flow_id=flow, step="migrate", host="h1", destination="h2", seconds=1.0
    )
    claim = scheduler.MigrationClaimMoved(
        flow_id=flow, step="release_source", source="h1", destination="h2"
    )
    state = fold(
        envelope(moved, "i1", producer="compute@h1", seconds=5),
        envelope(claim, "i1", producer="scheduler", seconds=6),
        envelope(flows.FlowCompleted(subject="i1"), flow, producer="scheduler", seconds=6),
        state=state,
    )
    view = instance_view(state.instances["i1"])
    assert (view.status, view.host) == ("RUNNING", "h2")
    assert state.hosts["h1"].allocated.vcpus == 0
    assert state.hosts["h2"].allocated.vcpus == state.claims["i1"]["h2"].vcpus
    kinds = [entry.type for entry in state.instances["i1"].history]
    for kind in ("LiveMigrationRequested", "FlowStarted", "InstanceMigrated", "FlowCompleted"):
        assert kind in kinds
    # Its console is now the destination agent's to serve.
    ticket = issue_ticket(
        state,
        ADMIN,
        "i1",
        ticket_id="tk1",
        now=at(7),
        secret=b"s" * 32,
        valid_seconds=60,
        base_url="ws://gw",
    )
    (issued,) = ticket.emits
    assert isinstance(issued.payload, api.ConsoleTicketIssued)
    assert issued.payload.host == "h2"


def test_a_failed_flow_leaves_it_running_where_it_was() -> None:
    state = asked(running())
    flow = "f-1"
    started = flows.FlowStarted(definition="live-migration", subject="i1", inputs={})
    failed = flows.FlowFailed(subject="i1", reason="no host", compensated=())
    state = fold(
        envelope(started, flow, producer="scheduler", seconds=4),
        envelope(failed, flow, producer="scheduler", seconds=5),
        state=state,
    )
    view = instance_view(state.instances["i1"])
    assert (view.status, view.host) == ("RUNNING", "h1")
    failures = [e for e in state.instances["i1"].history if e.type == "FlowFailed"]
    assert failures[0].payload["reason"] == "no host"
    asked(state)  # and it may be asked again


@pytest.mark.parametrize(
    ("host", "status", "detail"),
    [
        ("nowhere", 404, "host nowhere does not exist"),
        ("h1", 409, "instance i1 already runs on host h1"),
        ("deaf", 409, "host deaf cannot receive live migrations"),
    ],
)
def test_a_destination_must_exist_differ_and_receive(host: str, status: int, detail: str) -> None:
    refused = problem_of(
        lambda: migrate_instance(running(), ADMIN, "i1", MigrateInstance(host), "f")
    )
    assert (refused.status, refused.detail) == (status, detail)


def test_only_a_running_instance_migrates() -> None:
    stopped = fold(
        envelope(compute.InstanceStopped(host="h1"), "i1", producer="compute@h1", seconds=3),
        state=running(),
    )
    refused = problem_of(lambda: migrate_instance(stopped, ADMIN, "i1", MigrateInstance(), "f-2"))
    assert refused.status == 409
    assert refused.detail == (
        "cannot migrate instance i1: it is STOPPED, and a live migration needs RUNNING"
    )
    missing = problem_of(lambda: migrate_instance(running(), ADMIN, "i9", MigrateInstance(), "f"))
    assert missing.status == 404
