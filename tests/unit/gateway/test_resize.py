"""Resize at the gateway: who may ask, which flavors, quotas, and how the flow shows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.unit.gateway.events import SMALL, envelope, fold, requested, scheduled

from virga_events.catalog import Flavor, api, compute, flows, scheduler
from virga_events.catalog.quotas import TenantQuotaSet
from virga_gateway.auth import Principal
from virga_gateway.instances.commands import resize_instance
from virga_gateway.preview import preview
from virga_gateway.problems import Problem
from virga_gateway.quotas.enforce import over_quota, quota_increase
from virga_gateway.quotas.model import usage
from virga_gateway.service import placed_on
from virga_gateway.state import GatewayState

ALICE = Principal("tok-alice", "tenant", "t1")
BOB = Principal("tok-bob", "tenant", "t2")
MEDIUM = Flavor(name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40)


def problem_of(thunk: Callable[[], object]) -> Problem:
    with pytest.raises(Problem) as caught:
        thunk()
    return caught.value


def running() -> GatewayState:
    return fold(
        envelope(api.TenantCreated(name="alice"), "t1", tenant="t1"),
        envelope(api.TenantCreated(name="bob"), "t2", tenant="t2"),
        envelope(
            api.FlavorCreated(flavor=Flavor(name="m1.tiny2", vcpus=1, ram_mb=256, disk_gb=1)),
            "m1.tiny2",
        ),
        requested("i1", tenant="t1"),
        scheduled("i1"),
        envelope(compute.InstanceStarted(host="h1"), "i1", producer="compute@h1", seconds=2),
    )


def asked(state: GatewayState, flavor: str = "m1.medium") -> GatewayState:
    outcome = resize_instance(state, ALICE, "i1", flavor, "r-1")
    assert outcome.status == 202
    (emit,) = outcome.emits
    assert emit.payload == api.InstanceResizeRequested(flavor=MEDIUM, flow_id="r-1")
    return fold(envelope(emit.payload, "i1", tenant="t1", seconds=3), state=state)


def test_the_instance_is_resizing_while_the_flow_runs_then_has_the_new_flavor() -> None:
    state = asked(running())
    assert state.instances["i1"].status == "RESIZING"
    again = problem_of(lambda: resize_instance(state, ALICE, "i1", "m1.large", "r-2"))
    assert again.status == 409
    started = flows.FlowStarted(definition="resize", subject="i1", inputs={})
    state = fold(envelope(started, "r-1", producer="scheduler", seconds=4), state=state)
    resized = compute.InstanceResized(
        flow_id="r-1", step="redefine", host="h1", flavor=MEDIUM, running=True
    )
    moved = scheduler.ResizeClaimMoved(
        flow_id="r-1", step="release", source="h1", destination="h1", flavor=MEDIUM
    )
    state = fold(
        envelope(resized, "i1", producer="compute@h1", seconds=5),
        envelope(moved, "i1", producer="scheduler", seconds=5),
        envelope(flows.FlowCompleted(subject="i1"), "r-1", producer="scheduler", seconds=5),
        state=state,
    )
    instance = state.instances["i1"]
    assert (instance.status, instance.flavor, instance.host) == ("RUNNING", MEDIUM, "h1")
    assert state.hosts["h1"].allocated.vcpus == 2
    assert usage(state, "t1")["vcpus"] == 2
    assert "ResizeClaimMoved" in [entry.type for entry in instance.history]


def test_a_failed_resize_leaves_the_old_flavor_and_gives_back_the_quota() -> None:
    state = asked(running())
    assert usage(state, "t1")["ram_mb"] == 4096  # the larger flavor, while it may end so
    started = flows.FlowStarted(definition="resize", subject="i1", inputs={})
    released = scheduler.ResizeClaimReleased(flow_id="r-1", host="h1", reason="pool full")
    failed = flows.FlowFailed(subject="i1", reason="pool full", compensated=("claim",))
    state = fold(
        envelope(started, "r-1", producer="scheduler", seconds=4),
        envelope(released, "i1", producer="scheduler", seconds=5),
        envelope(compute.InstanceStarted(host="h1"), "i1", producer="compute@h1", seconds=5),
        envelope(failed, "r-1", producer="scheduler", seconds=5),
        state=state,
    )
    instance = state.instances["i1"]
    assert (instance.status, instance.flavor) == ("RUNNING", SMALL)
    assert usage(state, "t1")["ram_mb"] == 2048
    assert "FlowFailed" in [entry.type for entry in instance.history]


def test_a_smaller_disk_the_same_flavor_and_an_unknown_one_are_422_naming_flavor() -> None:
    state = running()
    for name, words in (
        ("m1.tiny2", "smaller"),
        ("m1.small", "already"),
        ("m9.nope", "no flavor"),
    ):
        problem = problem_of(lambda n=name: resize_instance(state, ALICE, "i1", n, "r-1"))  # type: ignore[misc]
        assert problem.status == 422
        assert [e.field for e in problem.errors] == ["flavor"]
        assert words in problem.errors[0].message


def test_only_a_running_or_stopped_instance_of_ones_own_is_resized() -> None:
    state = running()
    assert problem_of(lambda: resize_instance(state, BOB, "i1", "m1.medium", "r-1")).status == 404
    building = fold(requested("i2", tenant="t1"), state=state)
    refused = problem_of(lambda: resize_instance(building, ALICE, "i2", "m1.medium", "r-1"))
    assert (refused.status, refused.errors[0].field) == (409, "status")


def test_a_resize_over_the_tenants_vcpus_is_refused_for_the_difference() -> None:
    state = fold(envelope(TenantQuotaSet(limits={"vcpus": 1}), "t1"), state=running())
    outcome = resize_instance(state, ALICE, "i1", "m1.medium", "r-1")
    after = preview(state, list(outcome.emits), requested("x").occurred_at, "c")
    grown = quota_increase(state, after, list(outcome.emits))
    assert grown == {"t1": {"vcpus": 1, "ram_mb": 2048}}
    problem = over_quota(state, grown)
    assert problem is not None
    assert problem.status == 403
    assert [e.field for e in problem.errors] == ["vcpus"]


def test_a_resize_that_moves_hosts_lets_the_new_host_report_once_the_port_is_sent_there() -> None:
    state = asked(running())
    started = flows.FlowStarted(definition="resize", subject="i1", inputs={})
    state = fold(envelope(started, "r-1", producer="scheduler", seconds=4), state=state)
    assert placed_on(state, "i1") == "h1"  # the stop is h1's to report
    switch = scheduler.MigrationPortSwitchRequested(
        flow_id="r-1", step="switch_port", host="h2", source="h1"
    )
    state = fold(envelope(switch, "i1", producer="scheduler", seconds=5), state=state)
    assert placed_on(state, "i1") == "h2"  # its port binds there, before the claim moves
    resized = compute.InstanceResized(
        flow_id="r-1", step="redefine", host="h2", flavor=MEDIUM, running=True
    )
    moved = scheduler.ResizeClaimMoved(
        flow_id="r-1", step="release", source="h1", destination="h2", flavor=MEDIUM
    )
    state = fold(
        envelope(resized, "i1", producer="compute@h2", seconds=6),
        envelope(moved, "i1", producer="scheduler", seconds=6),
        envelope(flows.FlowCompleted(subject="i1"), "r-1", producer="scheduler", seconds=6),
        state=state,
    )
    instance = state.instances["i1"]
    assert (instance.status, instance.flavor, instance.host) == ("RUNNING", MEDIUM, "h2")
    assert placed_on(state, "i1") == "h2"
    assert instance.resizing_to is None
    assert state.hosts["h1"].allocated.vcpus == 0
    assert state.hosts["h2"].allocated.vcpus == 2
