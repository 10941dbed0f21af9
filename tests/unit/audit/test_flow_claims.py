"""`virga audit check` knows the claims live migrations hold, and that every flow must end."""

from __future__ import annotations

from datetime import timedelta

from tests.unit.audit.test_invariants import BIG, NOW, STUCK_AFTER, T0, booted, fact

from virga_audit.invariants import check, fold_all
from virga_events import Envelope
from virga_events.catalog import compute, flows, scheduler


def _claimed(flow: str, host: str, minutes: float) -> Envelope:
    claimed = scheduler.MigrationDestinationClaimed(
        flow_id=flow, step="claim", host=host, rack="r", zone="z", flavor=BIG
    )
    return fact(claimed, "i1", minutes, "scheduler")


def _started(flow: str, minutes: float) -> Envelope:
    return fact(flows.FlowStarted(definition="live-migration", subject="i1"), flow, minutes)


def _hosts(*names: str) -> list[Envelope]:
    registered = compute.HostRegistered(rack="r", zone="z", vcpus=4, ram_mb=4096, disk_gb=40)
    return [fact(registered, name, -1) for name in names]


def test_a_completed_migration_leaves_one_claim_on_the_destination_and_no_finding() -> None:
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        _started("f1", 5),
        _claimed("f1", "h2", 5),
        fact(
            compute.InstanceMigrated(
                flow_id="f1", step="migrate", host="h1", destination="h2", seconds=1.0
            ),
            "i1",
            6,
        ),
        fact(
            scheduler.MigrationClaimMoved(
                flow_id="f1", step="release_source", source="h1", destination="h2"
            ),
            "i1",
            7,
        ),
        fact(flows.FlowCompleted(subject="i1"), "f1", 7),
    ]
    model = fold_all(log)
    assert check(model, NOW, STUCK_AFTER) == []
    assert model.claims["i1"][0] == "h2"


def test_a_claim_a_flow_still_holds_when_it_ends_is_a_leak() -> None:
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        _started("f1", 5),
        _claimed("f1", "h2", 5),
        fact(flows.FlowFailed(subject="i1", reason="no route"), "f1", 6),
    ]
    findings = check(fold_all(log), NOW, STUCK_AFTER)
    assert [(v.kind, v.resource) for v in findings] == [("leaked-claim", "i1")]
    assert "claim on h2 outlived its flow f1" in findings[0].detail


def test_a_released_destination_claim_is_no_leak() -> None:
    released = scheduler.MigrationDestinationReleased(flow_id="f1", host="h2", reason="x")
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        _started("f1", 5),
        _claimed("f1", "h2", 5),
        fact(released, "i1", 6),
        fact(flows.FlowFailed(subject="i1", reason="x", compensated=("claim",)), "f1", 6),
    ]
    assert check(fold_all(log), NOW, STUCK_AFTER) == []


def test_a_destination_claim_counts_against_its_host() -> None:
    log = [*_hosts("h1", "h2"), *booted("i1"), *booted("i2", host="h2", minutes=1)]
    log += [_started("f1", 5), _claimed("f1", "h2", 5)]
    kinds = {(v.kind, v.resource) for v in check(fold_all(log), NOW, STUCK_AFTER)}
    assert ("overcommitted", "h2") in kinds


def test_a_flow_without_news_or_stuck_after_its_pivot_is_reported() -> None:
    silent = [*_hosts("h1", "h2"), *booted("i1"), _started("f1", 5)]
    stuck = [(v.kind, v.resource) for v in check(fold_all(silent), NOW, STUCK_AFTER)]
    assert stuck == [("stuck", "i1")]
    assert check(fold_all(silent), T0 + timedelta(minutes=10), STUCK_AFTER) == []
    ended = [
        *silent,
        fact(flows.FlowFailed(subject="i1", reason="agent gone", stuck=True), "f1", 6),
    ]
    findings = check(fold_all(ended), NOW, STUCK_AFTER)
    assert [(v.kind, v.resource) for v in findings] == [("stuck", "i1")]
    assert "ended stuck after its pivot: agent gone" in findings[0].detail


def _drain_started(minutes: float) -> Envelope:
    started = flows.FlowStarted(definition="host-drain", subject="h1", inputs={"instances": "i1"})
    return fact(started, "d1", minutes, "scheduler")


def _child(flow: str, minutes: float, drain: str = "d1") -> Envelope:
    inputs = {"source": "h1", "asked": "", "drain": drain}
    started = flows.FlowStarted(definition="live-migration", subject="i1", inputs=inputs)
    return fact(started, flow, minutes, "scheduler")


def test_a_long_drain_is_not_stuck_while_its_migrations_bring_news() -> None:
    log = [
        *_hosts("h1", "h2"),
        _drain_started(5),
        _child("d1/i1", 5),
        fact(flows.FlowFailed(subject="i1", reason="no route"), "d1/i1", 12),
        _child("d1/i2", 20),
        fact(flows.FlowStepStarted(step="plumb", attempt=1, deadline=NOW), "d1/i2", 25),
    ]
    assert check(fold_all(log), T0 + timedelta(minutes=30), STUCK_AFTER) == []
    silent = check(fold_all(log), T0 + timedelta(minutes=45), STUCK_AFTER)
    assert {(v.kind, v.resource) for v in silent} == {("stuck", "h1"), ("stuck", "i1")}


def test_a_drain_that_ends_with_what_it_moved_still_on_the_host_is_undrained() -> None:
    drained = scheduler.HostDrained(flow_id="d1", step="move_off", moved=("i1",))
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        _drain_started(5),
        _child("d1/i2", 5),
        fact(drained, "h1", 6, "scheduler"),
        fact(flows.FlowCompleted(subject="h1"), "d1", 6, "scheduler"),
    ]
    findings = check(fold_all(log), T0 + timedelta(minutes=7), STUCK_AFTER)
    assert [(v.kind, v.resource) for v in findings] == [("undrained", "h1"), ("undrained", "h1")]
    details = " ".join(v.detail for v in findings)
    assert "drain d1 ended while its migration d1/i2 runs" in details
    assert "drain d1 moved instance i1, which is still here" in details


def test_a_rebalance_that_ends_with_what_it_moved_still_on_its_source_is_undrained() -> None:
    inputs = {"instances": "i1,i2", "sources": "h1,h1", "destinations": "h2,h2"}
    started = flows.FlowStarted(definition="rebalance", subject="rebalance", inputs=inputs)
    finished = scheduler.RebalanceFinished(flow_id="r1", step="move", moved=("i1",))
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        fact(started, "r1", 5, "scheduler"),
        _child("r1/i2", 5, drain="r1"),
        fact(finished, "rebalance", 6, "scheduler"),
        fact(flows.FlowCompleted(subject="rebalance"), "r1", 6, "scheduler"),
    ]
    findings = check(fold_all(log), T0 + timedelta(minutes=7), STUCK_AFTER)
    assert [(v.kind, v.resource) for v in findings] == [("undrained", "h1"), ("undrained", "h1")]
    details = " ".join(v.detail for v in findings)
    assert "rebalance r1 ended while its migration r1/i2 runs" in details
    assert "rebalance r1 moved instance i1, which is still here" in details


def test_a_completed_evacuation_leaves_one_claim_on_the_destination_and_no_finding() -> None:
    """Evacuation (`virga_scheduler.core.evacuation`) holds and moves its claim with the live
    migration's events: once it ends, the instance has one claim, on the host it was rebuilt
    on, and the rebuilt guest's start there is no finding."""
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        fact(flows.FlowStarted(definition="evacuation", subject="i1"), "f1", 5),
        _claimed("f1", "h2", 5),
        fact(compute.InstanceStarted(host="h2"), "i1", 6, "compute@h2"),
        fact(compute.InstanceRebuilt(flow_id="f1", step="rebuild", host="h2"), "i1", 6),
        fact(
            scheduler.MigrationClaimMoved(
                flow_id="f1", step="release_source", source="h1", destination="h2"
            ),
            "i1",
            7,
        ),
        fact(flows.FlowCompleted(subject="i1"), "f1", 7),
    ]
    model = fold_all(log)
    assert check(model, NOW, STUCK_AFTER) == []
    assert model.claims["i1"][0] == "h2"
    assert [key for key in model.claims if key.startswith("i1")] == ["i1"]
