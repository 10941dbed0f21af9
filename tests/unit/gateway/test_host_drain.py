"""A host drain in the gateway: what the action appends, and its progress in the host view."""

from __future__ import annotations

import pytest
from tests.unit.gateway.events import envelope, fold

from virga_events import Envelope, Event
from virga_events.catalog import api, compute, flows, scheduler
from virga_gateway.hosts.bodies import HostAction
from virga_gateway.hosts.commands import host_action
from virga_gateway.hosts.views import host_view
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState

DRAIN = HostAction(action="drain")


def registered() -> GatewayState:
    host = compute.HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=8192, disk_gb=100)
    return fold(envelope(host, "h1", producer="compute@h1"))


def requested(state: GatewayState, flow_id: str = "d1") -> GatewayState:
    outcome = host_action(state, "h1", DRAIN, flow_id)
    return fold(*(envelope(e.payload, e.aggregate_id) for e in outcome.emits), state=state)


def by_scheduler(payload: Event, aggregate: str, seconds: float = 1) -> Envelope:
    return envelope(payload, aggregate, producer="scheduler", seconds=seconds)


def migration(flow_id: str, instance_id: str) -> Envelope:
    inputs = {"source": "h1", "asked": "", "drain": "d1"}
    started = flows.FlowStarted(definition="live-migration", subject=instance_id, inputs=inputs)
    return by_scheduler(started, flow_id)


def test_a_drain_disables_the_host_then_asks_the_scheduler_once() -> None:
    state = registered()
    outcome = host_action(state, "h1", HostAction(action="drain", reason="DIMMs"), "d1")
    assert outcome.emits[0].payload == api.HostDisabled(reason="DIMMs")
    assert outcome.emits[1].payload == api.HostDrainRequested(flow_id="d1")
    state = requested(state)
    view = host_view(state, state.hosts["h1"])
    assert view.enabled is False
    assert view.drain is not None
    assert (view.drain.id, view.drain.status) == ("d1", "DRAINING")
    again = host_action(state, "h1", DRAIN, "d2")
    assert again.emits == ()
    assert again.view is not None


def test_a_down_or_unknown_host_is_refused() -> None:
    state = fold(
        by_scheduler(scheduler.HostMarkedDown(last_heartbeat_at=None), "h1", 5), state=registered()
    )
    with pytest.raises(Problem) as caught:
        host_action(state, "h1", DRAIN, "d1")
    assert caught.value.status == 409
    with pytest.raises(Problem) as missing:
        host_action(state, "h9", DRAIN, "d1")
    assert missing.value.status == 404


def test_the_host_view_follows_the_drain_to_its_end() -> None:
    state = requested(registered())
    inputs = {"instances": "i1,i2", "stopped": "i3"}
    state = fold(
        by_scheduler(flows.FlowStarted(definition="host-drain", subject="h1", inputs=inputs), "d1"),
        migration("d1/i1", "i1"),
        migration("d1/i2", "i2"),
        state=state,
    )
    drain = state.hosts["h1"].drain
    assert drain is not None
    assert (drain.instances, drain.stopped, drain.moving) == (["i1", "i2"], ["i3"], ["i1", "i2"])
    state = fold(
        by_scheduler(flows.FlowCompleted(subject="i1"), "d1/i1", 2),
        by_scheduler(flows.FlowFailed(subject="i2", reason="no route"), "d1/i2", 3),
        state=state,
    )
    assert (drain.moving, drain.moved, drain.unmoved) == ([], ["i1"], ["i2"])
    failed = scheduler.HostDrainFailed(
        flow_id="d1",
        step="move_off",
        reason="1 instance(s) could not move: i2",
        unmoved=("i2",),
        moved=("i1",),
        stopped=("i3",),
    )
    state = fold(
        by_scheduler(failed, "h1", 3),
        by_scheduler(flows.FlowFailed(subject="h1", reason=failed.reason), "d1", 3),
        state=state,
    )
    view = host_view(state, state.hosts["h1"]).drain
    assert view is not None
    assert (view.status, view.unmoved, view.reason) == ("FAILED", ["i2"], failed.reason)
    assert state.drain_flows == {}
    # A new drain may start once this one ended.
    assert len(host_action(state, "h1", DRAIN, "d2").emits) == 2
