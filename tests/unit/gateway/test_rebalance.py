"""Rebalancing at the gateway: the plan from the projection, what POST appends, the progress."""

from __future__ import annotations

from tests.unit.gateway.events import envelope, fold, requested, scheduled
from tests.unit.gateway.test_migration import host

from virga_events.catalog import api, compute, flows, scheduler
from virga_events.catalog.common import PlannedMove
from virga_gateway.rebalance.commands import execute
from virga_gateway.rebalance.fold import latest
from virga_gateway.rebalance.plan import current_plan
from virga_gateway.rebalance.views import RunView, rebalance_view
from virga_gateway.state import GatewayState

INSTANCES = [f"i{n}" for n in range(6)]


def crowded() -> GatewayState:
    """Three hosts of 8 vCPU / 8 GB; six 2 GB instances, all running on h1."""
    events = [host("h1"), host("h2"), host("h3"), host("deaf", receives=False)]
    for n, instance_id in enumerate(INSTANCES):
        events += [
            requested(instance_id, seconds=n),
            scheduled(instance_id, seconds=n + 0.5),
            envelope(
                compute.InstanceStarted(host="h1"), instance_id, producer="compute@h1", seconds=n
            ),
        ]
    return fold(*events)


def test_six_instances_on_one_of_three_hosts_get_a_plan_that_spreads_them() -> None:
    planned = current_plan(crowded())
    assert len(planned.moves) == 4
    assert {m.source for m in planned.moves} == {"h1"}
    assert sorted(m.destination for m in planned.moves) == ["h2", "h2", "h3", "h3"]
    # The deaf host (no migration endpoint) counts in the score but cannot take a move.
    assert 0.0 < planned.score_after < planned.score_before
    view = rebalance_view(planned, None)
    assert view.moves[-1].score_after == planned.score_after
    assert view.last_run is None


def test_post_writes_the_plan_and_the_run_shows_its_migrations() -> None:
    state = crowded()
    outcome = execute(state, "r1")
    (emit,) = outcome.emits
    assert isinstance(emit.payload, api.RebalanceRequested)
    assert emit.aggregate_id == "rebalance"
    assert len(emit.payload.moves) == 4
    state = fold(envelope(emit.payload, "rebalance", seconds=10), state=state)
    first = emit.payload.moves[0]
    inputs = {"source": "h1", "asked": first.destination, "drain": "r1", "by": "rebalance"}
    started = flows.FlowStarted(
        definition="live-migration", subject=first.instance_id, inputs=inputs
    )
    child = f"r1/{first.instance_id}"
    state = fold(envelope(started, child, producer="scheduler", seconds=11), state=state)
    record = latest(state)
    assert record is not None
    assert (record.status, record.moving) == ("RUNNING", [first.instance_id])
    assert state.hosts["h1"].drain is None  # a rebalance's migration drains no host
    again = execute(state, "r2")
    assert again.emits == ()
    assert again.view is not None
    shown = again.view(state)
    assert isinstance(shown, RunView)
    assert shown.id == "r1"
    done = flows.FlowCompleted(subject=first.instance_id)
    state = fold(envelope(done, child, producer="scheduler", seconds=12), state=state)
    record = latest(state)
    assert record is not None
    assert (record.moving, record.moved) == ([], [first.instance_id])
    rest = tuple(m.instance_id for m in emit.payload.moves[1:])
    finished = scheduler.RebalanceFinished(
        flow_id="r1", step="move", moved=(first.instance_id,), skipped=rest
    )
    state = fold(envelope(finished, "rebalance", producer="scheduler", seconds=13), state=state)
    record = latest(state)
    assert record is not None
    assert (record.status, record.skipped) == ("FINISHED", list(rest))


def test_the_end_folded_before_the_request_still_shows() -> None:
    finished = scheduler.RebalanceFinished(flow_id="r1", step="move", moved=("i1",))
    asked = api.RebalanceRequested(
        flow_id="r1",
        moves=(PlannedMove(instance_id="i1", source="h1", destination="h2"),),
        score_before=0.5,
        score_after=0.0,
    )
    state = fold(
        envelope(finished, "rebalance", producer="scheduler", seconds=2),
        envelope(asked, "rebalance", seconds=1),
    )
    record = latest(state)
    assert record is not None
    assert (record.status, record.moved, len(record.moves)) == ("FINISHED", ["i1"], 1)


def test_hosts_that_may_not_take_instances_get_none() -> None:
    state = fold(
        envelope(api.HostDisabled(reason="x"), "h2"),
        envelope(
            scheduler.HostMarkedDown(last_heartbeat_at=None), "h3", producer="scheduler", seconds=20
        ),
        state=crowded(),
    )
    assert current_plan(state).moves == ()


def test_a_host_is_never_filled_past_its_allocation_ratios() -> None:
    # h2 and h3 sell their 8 GB of RAM at ratio 0.25: 2 GB each, room for one instance each
    # (at ratio 1 they take two each, as above).
    ratios = api.AllocationRatiosSet(cpu=4.0, ram=0.25, disk=1.0)
    state = fold(envelope(ratios, "h2"), envelope(ratios, "h3"), state=crowded())
    planned = current_plan(state)
    assert sorted(m.destination for m in planned.moves) == ["h2", "h3"]
