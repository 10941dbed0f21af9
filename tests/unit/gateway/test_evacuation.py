"""Evacuation at the gateway: only off a host that is down, where to, and how the flow shows
on the instance (EVACUATING, then RUNNING on the host it was rebuilt on)."""

from __future__ import annotations

from tests.unit.gateway.events import envelope, fold
from tests.unit.gateway.test_migration import ADMIN, problem_of, running

from virga_events.catalog import api, compute, flows, scheduler
from virga_events.catalog.common import Flavor
from virga_gateway.instances.commands import evacuate_instance
from virga_gateway.service import placed_on
from virga_gateway.state import GatewayState


def down(state: GatewayState, host: str = "h1") -> GatewayState:
    marked = scheduler.HostMarkedDown(last_heartbeat_at=None)
    return fold(envelope(marked, host, producer="scheduler", seconds=10), state=state)


def test_an_instance_whose_host_is_up_is_not_evacuated() -> None:
    refused = problem_of(lambda: evacuate_instance(running(), ADMIN, "i1", None, "f-1"))
    assert refused.status == 409
    assert "its host h1 is up" in str(refused.detail)


def test_the_host_asked_for_must_be_another_known_one_that_is_up() -> None:
    state = down(running())
    assert problem_of(lambda: evacuate_instance(state, ADMIN, "i1", "nope", "f")).status == 404
    assert problem_of(lambda: evacuate_instance(state, ADMIN, "i1", "h1", "f")).status == 409
    assert (
        problem_of(lambda: evacuate_instance(down(state, "h2"), ADMIN, "i1", "h2", "f")).status
        == 409
    )


def test_the_instance_is_evacuating_while_the_flow_runs_then_runs_on_the_destination() -> None:
    state = down(running())
    outcome = evacuate_instance(state, ADMIN, "i1", "h2", "f-1")
    assert outcome.status == 202
    (emit,) = outcome.emits
    assert emit.payload == api.EvacuationRequested(host="h2", flow_id="f-1")
    state = fold(envelope(emit.payload, "i1", tenant="t1", seconds=11), state=state)
    again = problem_of(lambda: evacuate_instance(state, ADMIN, "i1", None, "f-2"))
    assert again.status == 409
    started = flows.FlowStarted(definition="evacuation", subject="i1", inputs={})
    state = fold(envelope(started, "f-1", producer="scheduler", seconds=12), state=state)
    assert state.instances["i1"].status == "EVACUATING"
    flavor = Flavor(name="m1.small", vcpus=1, ram_mb=512, disk_gb=10)
    claimed = scheduler.MigrationDestinationClaimed(
        flow_id="f-1", step="claim", host="h2", rack="r1", zone="az1", flavor=flavor
    )
    state = fold(
        envelope(claimed, "i1", tenant="t1", producer="scheduler", seconds=12), state=state
    )
    assert placed_on(state, "i1") == "h2"  # the rebuilt guest's reports come from h2
    for payload, producer in (
        (compute.InstanceStarted(host="h2"), "compute@h2"),
        (compute.InstanceRebuilt(flow_id="f-1", step="rebuild", host="h2"), "compute@h2"),
        (
            scheduler.MigrationClaimMoved(
                flow_id="f-1", step="release_source", source="h1", destination="h2"
            ),
            "scheduler",
        ),
    ):
        state = fold(
            envelope(payload, "i1", tenant="t1", producer=producer, seconds=13), state=state
        )
    ended = flows.FlowCompleted(subject="i1")
    state = fold(envelope(ended, "f-1", producer="scheduler", seconds=14), state=state)
    instance = state.instances["i1"]
    assert (instance.status, instance.host) == ("RUNNING", "h2")
    assert placed_on(state, "i1") == "h2"
    kinds = [entry.type for entry in instance.history]
    assert "EvacuationRequested" in kinds
    assert "InstanceRebuilt" in kinds


def test_the_destinations_report_read_before_the_claim_that_names_it_is_not_refused() -> None:
    """The rebuilt guest's InstanceRebuilt (the destination's topic) may be read before the
    scheduler's claim naming that destination (another topic): while the gateway does not know
    the destination yet, the evacuation's reports are not held to the dead host (they were
    dead-lettered, and the history lacked InstanceRebuilt: a flake of the service test)."""
    state = down(running())
    (emit,) = evacuate_instance(state, ADMIN, "i1", None, "f-1").emits
    state = fold(envelope(emit.payload, "i1", tenant="t1", seconds=11), state=state)
    assert placed_on(state, "i1") is None  # requested, no flow read yet
    started = flows.FlowStarted(definition="evacuation", subject="i1", inputs={})
    state = fold(envelope(started, "f-1", producer="scheduler", seconds=12), state=state)
    assert placed_on(state, "i1") is None  # started, its claim not read yet
    rebuilt = compute.InstanceRebuilt(flow_id="f-1", step="rebuild", host="h2")
    state = fold(
        envelope(rebuilt, "i1", tenant="t1", producer="compute@h2", seconds=13), state=state
    )
    assert "InstanceRebuilt" in [entry.type for entry in state.instances["i1"].history]
    flavor = Flavor(name="m1.small", vcpus=1, ram_mb=512, disk_gb=10)
    claimed = scheduler.MigrationDestinationClaimed(
        flow_id="f-1", step="claim", host="h2", rack="r1", zone="az1", flavor=flavor
    )
    state = fold(
        envelope(claimed, "i1", tenant="t1", producer="scheduler", seconds=13), state=state
    )
    assert placed_on(state, "i1") == "h2"  # from the claim on, only the destination
