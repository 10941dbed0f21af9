"""Draining a host as the scheduler runs it: migrations a bounded number at a time, the end."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.scheduler.service_support import (
    Scheduler,
    deletion_requested,
    event,
    only,
    requested,
)
from tests.unit.scheduler.service_support import registered as registered_deaf

from virga_events import Envelope, Event
from virga_events.catalog.api import HostDisabled, HostDrainRequested, LiveMigrationRequested
from virga_events.catalog.compute import (
    InstanceMigrated,
    InstanceMigrationFailed,
    InstanceStarted,
    InstanceStopped,
)
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.network import (
    MigrationPortPlumbed,
    MigrationPortPlumbingFailed,
    MigrationPortSwitched,
)
from virga_events.catalog.scheduler import HostDrained, HostDrainFailed
from virga_runtime.flows import Flow
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import snapshot
from virga_scheduler.core.drain import HOST_DRAIN, child_id
from virga_scheduler.core.fold import evolve
from virga_scheduler.core.model import SchedulerState

INSTANCES = ("i1", "i2", "i3", "i4")


def registered(name: str, *, vcpus: int = 16, seconds: float = 0) -> Envelope:
    uri = f"qemu+tcp://{name}/system"
    return registered_deaf(name, vcpus=vcpus, ram_mb=32768, seconds=seconds, migration_uri=uri)


def loaded(at_once: int = 2, others: int = 2, instances: tuple[str, ...] = INSTANCES) -> Scheduler:
    """Every instance runs on h1 (the only host when they were placed); then h2... joined."""
    scheduler = Scheduler(config=SchedulerConfig(drain_parallel=at_once))
    scheduler.feed(registered("h1"))
    for n, instance_id in enumerate(instances):
        scheduler.feed(requested(instance_id, seconds=1 + n))
        started = InstanceStarted(host="h1")
        scheduler.feed(event(started, instance_id, "t-1", seconds=1 + n, producer="compute@h1"))
    for n in range(others):
        scheduler.feed(registered(f"h{n + 2}", seconds=10 + n))
    assert all(scheduler.host_of(i) == "h1" for i in instances)
    return scheduler


def drain(scheduler: Scheduler, flow_id: str = "d1", seconds: float = 20) -> list[Event]:
    scheduler.feed(event(HostDisabled(reason="maintenance"), "h1", seconds=seconds))
    return scheduler.feed(event(HostDrainRequested(flow_id=flow_id), "h1", seconds=seconds))


def children(scheduler: Scheduler, drain_id: str = "d1") -> list[Flow]:
    book = scheduler.state.flows.flows
    return [f for f in book.values() if f.inputs.get("drain") == drain_id]


def moving(scheduler: Scheduler, drain_id: str = "d1") -> list[Flow]:
    return [f for f in children(scheduler, drain_id) if f.outcome == "running"]


def step(scheduler: Scheduler, child: Flow, ok: bool, seconds: float = 30) -> list[Event]:
    """Answer the step `child` waits for, well or badly, as the host asked would."""
    destination, source = child["destination"], child["source"]
    answer: Event
    if child.step == "plumb":
        answer = (
            MigrationPortPlumbed(flow_id=child.flow_id, step="plumb", host=destination)
            if ok
            else MigrationPortPlumbingFailed(
                flow_id=child.flow_id, step="plumb", host=destination, reason="no bridge"
            )
        )
        host = destination
    elif child.step == "migrate":
        answer = (
            InstanceMigrated(
                flow_id=child.flow_id,
                step="migrate",
                host=source,
                destination=destination,
                seconds=1.0,
            )
            if ok
            else InstanceMigrationFailed(
                flow_id=child.flow_id, step="migrate", host=source, reason="no route"
            )
        )
        host = source
    else:
        assert child.step == "switch_port"
        answer = MigrationPortSwitched(flow_id=child.flow_id, step="switch_port", host=destination)
        host = destination
    envelope = event(answer, child.subject, "t-1", seconds=seconds, producer=f"agent@{host}")
    return scheduler.feed(envelope)


def drain_flow(scheduler: Scheduler, drain_id: str = "d1") -> Flow:
    return scheduler.state.flows.flows[drain_id]


def test_a_drain_moves_every_instance_two_at_a_time_and_ends_drained() -> None:
    scheduler = loaded()
    drain(scheduler)
    assert drain_flow(scheduler).definition == HOST_DRAIN
    assert {f.subject for f in moving(scheduler)} == {"i1", "i2"}
    emitted: list[Event] = []
    while moving(scheduler):
        assert len(moving(scheduler)) <= 2
        emitted += step(scheduler, moving(scheduler)[0], ok=True)
    drained = only(emitted, HostDrained)
    assert drained.moved == INSTANCES
    assert drain_flow(scheduler).outcome == "completed"
    assert all(scheduler.host_of(i) not in (None, "h1") for i in INSTANCES)
    assert scheduler.state.claims.usage_of("h1").vcpus == 0


def test_an_instance_no_host_can_take_is_left_running_and_the_drain_fails_naming_it() -> None:
    scheduler = loaded(others=0, instances=("i1",))
    emitted = drain(scheduler)
    failed = only(emitted, HostDrainFailed)
    assert failed.unmoved == ("i1",)
    assert [e.subject for e in emitted if isinstance(e, FlowFailed)] == ["i1", "h1"]
    assert drain_flow(scheduler).outcome == "failed"
    assert scheduler.host_of("i1") == "h1"


def test_stopped_instances_stay_placed_and_an_empty_host_drains_at_once() -> None:
    scheduler = loaded(instances=("i1",))
    stopped = event(InstanceStopped(host="h1"), "i1", "t-1", seconds=15, producer="compute@h1")
    scheduler.feed(stopped)
    drained = only(drain(scheduler), HostDrained)
    assert (drained.moved, drained.stopped) == ((), ("i1",))
    assert drain_flow(scheduler).outcome == "completed"
    assert scheduler.host_of("i1") == "h1"


def test_a_repeated_request_starts_nothing_while_the_drain_runs() -> None:
    scheduler = loaded()
    drain(scheduler)
    again = scheduler.feed(event(HostDrainRequested(flow_id="d2"), "h1", seconds=21))
    assert again == []
    assert drain(scheduler, "d1", seconds=22) == []
    assert len(children(scheduler)) == 2


def test_a_restarted_scheduler_carries_the_drain_on_from_its_snapshot() -> None:
    scheduler = loaded()
    drain(scheduler)
    while len(children(scheduler)) < 3:
        step(scheduler, moving(scheduler)[0], ok=True)
    restored = snapshot.restore(snapshot.snapshot(scheduler.state))
    scheduler = Scheduler(config=scheduler.config, state=restored)
    assert scheduler.tick(25) == []  # nothing to start: two move already
    emitted: list[Event] = []
    while moving(scheduler):
        emitted += step(scheduler, moving(scheduler)[0], ok=True)
    assert only(emitted, HostDrained).moved == INSTANCES


@settings(max_examples=60, deadline=None)
@given(
    at_once=st.integers(min_value=1, max_value=3),
    choices=st.lists(st.tuples(st.integers(0, 5), st.booleans()), max_size=40),
)
def test_any_interleaving_ends_with_exactly_the_unmoved_instances_never_over_the_limit(
    at_once: int, choices: list[tuple[int, bool]]
) -> None:
    scheduler = loaded(at_once=at_once)
    emitted = drain(scheduler)
    failed: set[str] = set()
    moves = iter(choices)
    while moving(scheduler):
        running = moving(scheduler)
        assert len(running) <= at_once
        pick, ok = next(moves, (0, True))
        child = running[pick % len(running)]
        if child.step == "switch_port":
            ok = True  # past the pivot the guest has moved: the flow only goes forward
        elif not ok:
            failed.add(child.subject)
        emitted += step(scheduler, child, ok)
    ended = [e for e in emitted if isinstance(e, (HostDrained, HostDrainFailed))]
    assert len(ended) == 1
    if failed:
        assert isinstance(ended[0], HostDrainFailed)
        assert set(ended[0].unmoved) == failed
        assert drain_flow(scheduler).outcome == "failed"
    else:
        assert isinstance(ended[0], HostDrained)
        assert drain_flow(scheduler).outcome == "completed"
    assert set(ended[0].moved) == set(INSTANCES) - failed
    for instance_id in INSTANCES:
        on_h1 = scheduler.host_of(instance_id) == "h1"
        assert on_h1 == (instance_id in failed)
    assert scheduler.state.claims.usage_of("h1").vcpus == 2 * len(failed)
    assert len(children(scheduler)) == len(INSTANCES)
    assert sum(isinstance(e, FlowCompleted) for e in emitted) == len(INSTANCES) - len(failed) + (
        0 if failed else 1
    )
    assert child_id("d1", "i1") in scheduler.state.flows.flows


def test_instances_deleted_or_stopped_before_their_turn_are_not_moved() -> None:
    scheduler = loaded()
    drain(scheduler)
    assert {f.subject for f in moving(scheduler)} == {"i1", "i2"}
    scheduler.feed(deletion_requested("i3"))
    stopped = event(InstanceStopped(host="h1"), "i4", "t-1", seconds=21, producer="compute@h1")
    scheduler.feed(stopped)
    emitted: list[Event] = []
    while moving(scheduler):
        emitted += step(scheduler, moving(scheduler)[0], ok=True)
    drained = only(emitted, HostDrained)
    assert (drained.moved, drained.stopped) == (("i1", "i2"), ("i4",))
    assert {f.subject for f in children(scheduler)} == {"i1", "i2"}


def test_an_instance_another_migration_moves_is_waited_for_then_left_alone() -> None:
    scheduler = loaded()
    own = event(LiveMigrationRequested(host="h2", flow_id="m1"), "i1", "t-1", seconds=19)
    scheduler.feed(own)
    drain(scheduler)
    assert {f.subject for f in moving(scheduler)} == {"i2", "i3"}
    other = scheduler.state.flows.flows["m1"]
    while other.outcome == "running":
        step(scheduler, other, ok=True)
        other = scheduler.state.flows.flows["m1"]
    assert scheduler.host_of("i1") == "h2"
    emitted = scheduler.tick(25)  # i1 left the host another way: the drain does not wait
    while moving(scheduler):
        emitted += step(scheduler, moving(scheduler)[0], ok=True)
    drained = only(emitted, HostDrained)
    assert drained.moved == ("i2", "i3", "i4")
    assert scheduler.state.claims.usage_of("h1").vcpus == 0


def test_a_rebuild_from_the_log_mid_drain_gives_the_live_state_and_goes_on() -> None:
    scheduler = loaded()
    drain(scheduler)
    step(scheduler, moving(scheduler)[0], ok=False)  # one fails; the next one starts
    while len(children(scheduler)) < 4:
        step(scheduler, moving(scheduler)[0], ok=True)
    state = SchedulerState(scheduler.config.ratios)
    for envelope in [*scheduler.inputs, *scheduler.outputs]:  # inputs first, then its own
        state = evolve(state, envelope)
    assert snapshot.snapshot(state) == snapshot.snapshot(scheduler.state)
    rebuilt = Scheduler(config=scheduler.config, state=state)
    emitted: list[Event] = []
    while moving(rebuilt):
        emitted += step(rebuilt, moving(rebuilt)[0], ok=True)
    failed = only(emitted, HostDrainFailed)
    assert len(failed.unmoved) == 1
    assert len(failed.moved) == 3
