"""`virga audit check` knows the hold of a resize's new flavor: one claim per instance after."""

from __future__ import annotations

from tests.unit.audit.test_invariants import NOW, STUCK_AFTER, booted, fact

from virga_audit.invariants import check, fold_all
from virga_events import Envelope
from virga_events.catalog import Flavor, compute, flows, scheduler

HUGE = Flavor(name="m1.huge", vcpus=4, ram_mb=8192, disk_gb=40)


def _hosts(*names: str) -> list[Envelope]:
    registered = compute.HostRegistered(rack="r", zone="z", vcpus=8, ram_mb=16384, disk_gb=80)
    return [fact(registered, name, -1) for name in names]


def _resize(host: str) -> list[Envelope]:
    claimed = scheduler.ResizeClaimed(
        flow_id="r1", step="claim", host=host, rack="r", zone="z", flavor=HUGE
    )
    return [
        fact(flows.FlowStarted(definition="resize", subject="i1"), "r1", 5),
        fact(claimed, "i1", 5, "scheduler"),
    ]


def test_a_completed_resize_leaves_one_claim_of_the_new_flavor_and_no_finding() -> None:
    moved = scheduler.ResizeClaimMoved(
        flow_id="r1", step="release", source="h1", destination="h1", flavor=HUGE
    )
    log = [
        *_hosts("h1"),
        *booted("i1"),
        *_resize("h1"),
        fact(moved, "i1", 7, "scheduler"),
        fact(flows.FlowCompleted(subject="i1"), "r1", 7),
    ]
    model = fold_all(log)
    assert check(model, NOW, STUCK_AFTER) == []
    assert model.claims["i1"] == ("h1", HUGE)


def test_a_failed_resize_that_released_its_hold_is_no_leak_and_one_that_did_not_is() -> None:
    released = scheduler.ResizeClaimReleased(flow_id="r1", host="h1", reason="pool full")
    failed = flows.FlowFailed(subject="i1", reason="pool full", compensated=("claim",))
    clean = [*_hosts("h1"), *booted("i1"), *_resize("h1"), fact(released, "i1", 6)]
    assert check(fold_all([*clean, fact(failed, "r1", 6)]), NOW, STUCK_AFTER) == []
    leaky = [*_hosts("h1"), *booted("i1"), *_resize("h1"), fact(failed, "r1", 6)]
    findings = check(fold_all(leaky), NOW, STUCK_AFTER)
    assert [(v.kind, v.resource) for v in findings] == [("leaked-claim", "i1")]


def test_a_resize_that_moved_hosts_leaves_one_claim_on_the_new_host_and_no_finding() -> None:
    moved = scheduler.ResizeClaimMoved(
        flow_id="r1", step="release", source="h1", destination="h2", flavor=HUGE
    )
    resized = compute.InstanceResized(
        flow_id="r1", step="redefine", host="h2", flavor=HUGE, running=True
    )
    log = [
        *_hosts("h1", "h2"),
        *booted("i1"),
        *_resize("h2"),
        fact(resized, "i1", 6, "compute@h2"),
        fact(moved, "i1", 7, "scheduler"),
        fact(flows.FlowCompleted(subject="i1"), "r1", 7),
    ]
    model = fold_all(log)
    assert check(model, NOW, STUCK_AFTER) == []
    assert model.claims["i1"] == ("h2", HUGE)
