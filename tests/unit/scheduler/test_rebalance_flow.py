"""A rebalancing plan as the scheduler runs it: its moves as migrations to their planned hosts,
a bounded number at a time; moves the cluster no longer allows fail or are skipped."""

from __future__ import annotations

from tests.unit.scheduler.service_support import Scheduler, event, only
from tests.unit.scheduler.test_drain_flow import children, loaded, moving, step

from virga_events import Event
from virga_events.catalog.api import HostDisabled, RebalanceRequested
from virga_events.catalog.common import PlannedMove
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import RebalanceFinished
from virga_scheduler.core.drain import REBALANCE


def rebalance(
    scheduler: Scheduler,
    moves: list[tuple[str, str, str]],
    flow_id: str = "r1",
    seconds: float = 20,
) -> list[Event]:
    planned = tuple(PlannedMove(instance_id=i, source=s, destination=d) for i, s, d in moves)
    asked = RebalanceRequested(flow_id=flow_id, moves=planned, score_before=1.0, score_after=0.5)
    return scheduler.feed(event(asked, "rebalance", seconds=seconds))


def run_out(scheduler: Scheduler, flow_id: str = "r1") -> list[Event]:
    emitted: list[Event] = []
    while moving(scheduler, flow_id):
        assert len(moving(scheduler, flow_id)) <= 2
        emitted += step(scheduler, moving(scheduler, flow_id)[0], ok=True)
    return emitted


def test_a_plan_moves_each_instance_to_its_planned_host_two_at_a_time() -> None:
    scheduler = loaded()
    plan = [("i1", "h1", "h2"), ("i2", "h1", "h3"), ("i3", "h1", "h2")]
    rebalance(scheduler, plan)
    flow = scheduler.state.flows.flows["r1"]
    assert flow.definition == REBALANCE
    assert {f.subject: f["asked"] for f in moving(scheduler, "r1")} == {"i1": "h2", "i2": "h3"}
    finished = only(run_out(scheduler), RebalanceFinished)
    assert (finished.moved, finished.unmoved, finished.skipped) == (("i1", "i2", "i3"), (), ())
    assert [scheduler.host_of(i) for i in ("i1", "i2", "i3", "i4")] == ["h2", "h3", "h2", "h1"]
    assert scheduler.state.flows.flows["r1"].outcome == "completed"
    assert len(scheduler.state.claims) == 4  # one claim per instance, none left on the way


def test_a_move_that_became_invalid_fails_and_one_whose_instance_left_is_skipped() -> None:
    scheduler = loaded()
    scheduler.feed(event(HostDisabled(reason="maintenance"), "h3", seconds=15))
    gone = InstanceDeleted(host="h1")
    scheduler.feed(event(gone, "i4", "t-1", seconds=16, producer="compute@h1"))
    plan = [("i1", "h1", "h3"), ("i2", "h1", "h2"), ("i4", "h1", "h2"), ("i3", "h2", "h1")]
    emitted = rebalance(scheduler, plan)
    emitted += run_out(scheduler)
    finished = only(emitted, RebalanceFinished)
    assert finished.moved == ("i2",)
    assert finished.unmoved == ("i1",)  # h3 is disabled now: its claim step refused it
    assert set(finished.skipped) == {"i3", "i4"}  # i3 was never on h2; i4 is deleted
    assert scheduler.host_of("i1") == "h1"
    assert scheduler.host_of("i2") == "h2"


def test_an_empty_plan_ends_at_once_and_a_second_plan_waits_for_none() -> None:
    scheduler = loaded()
    finished = only(rebalance(scheduler, []), RebalanceFinished)
    assert finished.moved == finished.unmoved == finished.skipped == ()
    rebalance(scheduler, [("i1", "h1", "h2")], flow_id="r2", seconds=21)
    again = rebalance(scheduler, [("i2", "h1", "h2")], flow_id="r3", seconds=22)
    assert again == []  # r2 runs: one rebalance at a time
    assert [f.subject for f in children(scheduler, "r2")] == ["i1"]
