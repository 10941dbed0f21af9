"""The process manager: a flow's steps, deadlines and compensations, folded from its events."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from virga_events import Event, EventRegistry, new_event
from virga_events.catalog.flows import (
    FlowCompleted,
    FlowFailed,
    FlowStepCompensated,
    FlowStepCompleted,
    FlowStepFailed,
)
from virga_runtime.flow_manager import FlowManager
from virga_runtime.flows import (
    FLOW_EVENTS,
    Flow,
    FlowBook,
    FlowDefinition,
    Step,
    flow_folds,
    restore_book,
    snapshot_book,
)
from virga_runtime.service import Emit

REGISTRY = EventRegistry()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@REGISTRY.register("TestStepAsked")
@dataclass(frozen=True, slots=True, kw_only=True)
class Asked(Event):
    flow_id: str
    step: str


@REGISTRY.register("TestStepDone")
@dataclass(frozen=True, slots=True, kw_only=True)
class Done(Event):
    flow_id: str
    step: str
    value: str = ""


@REGISTRY.register("TestStepBroke")
@dataclass(frozen=True, slots=True, kw_only=True)
class Broke(Event):
    flow_id: str
    step: str
    reason: str


@REGISTRY.register("TestStepUndone")
@dataclass(frozen=True, slots=True, kw_only=True)
class Undo(Event):
    flow_id: str
    step: str


@dataclass
class World:
    """The hosting service's state, as commands see it."""

    answers_claim: bool = False
    """The host takes the first step itself (as the scheduler takes a claim)."""


def _step(name: str, *, undo: bool, attempts: int = 1) -> Step[World]:
    def command(world: World, flow: Flow) -> list[Emit]:
        asked = [Emit(Asked(flow_id=flow.flow_id, step=name), flow.subject, None)]
        if name == "claim" and world.answers_claim:
            done = Done(flow_id=flow.flow_id, step=name, value="hv-2")
            asked.append(Emit(done, flow.subject, None))
        return asked

    def compensate(world: World, flow: Flow) -> list[Emit]:
        return [Emit(Undo(flow_id=flow.flow_id, step=name), flow.subject, None)]

    return Step(
        name,
        command,
        completed_by=(Done,),
        failed_by=(Broke,),
        timeout=timedelta(seconds=30),
        compensate=compensate if undo else None,
        result=lambda event: {name: event.value} if event.value else {},
        attempts=attempts,
    )


STEPS = ("claim", "prepare", "migrate", "switch")
FLOW = FlowDefinition(
    "test-migration",
    (
        _step("claim", undo=True),
        _step("prepare", undo=True, attempts=2),
        _step("migrate", undo=False),
        _step("switch", undo=False, attempts=3),
    ),
    pivot="migrate",
)
MANAGER = FlowManager(FLOW)


@dataclass
class Host:
    """A hosting service in miniature: it folds the flow events it appends, as the runtime."""

    world: World = field(default_factory=World)
    book: FlowBook = field(default_factory=FlowBook)
    log: list[Event] = field(default_factory=list)
    now: datetime = T0

    def __post_init__(self) -> None:
        self.folds = flow_folds(lambda book: book)

    def append(self, emits: list[Emit]) -> list[Event]:
        for emit in emits:
            self.log.append(emit.payload)
            if isinstance(emit.payload, FLOW_EVENTS):
                envelope = new_event(
                    emit.payload,
                    aggregate_id=emit.aggregate_id,
                    tenant_id=emit.tenant_id,
                    producer="test",
                    occurred_at=self.now,
                )
                self.folds.evolve(self.book, envelope)
        return [emit.payload for emit in emits]

    def start(self, flow_id: str = "f-1") -> list[Event]:
        return self.append(
            MANAGER.start(
                self.world,
                self.book,
                FLOW.name,
                flow_id,
                subject="i-1",
                tenant_id="t-1",
                inputs={"source": "hv-1"},
                now=self.now,
            )
        )

    def hear(self, event: Event) -> list[Event]:
        envelope = new_event(
            event, aggregate_id="x", tenant_id=None, producer="agent", occurred_at=self.now
        )
        return self.append(MANAGER.decide(self.world, self.book, envelope))

    def tick(self, seconds: float) -> list[Event]:
        self.now += timedelta(seconds=seconds)
        return self.append(MANAGER.tick(self.world, self.book, self.now))

    @property
    def flow(self) -> Flow:
        return self.book.flows["f-1"]


def _done(step: str, value: str = "") -> Done:
    return Done(flow_id="f-1", step=step, value=value)


def _types(events: list[Event]) -> list[str]:
    return [f"{type(e).__name__}:{getattr(e, 'step', '')}" for e in events]


def test_a_flow_whose_steps_complete_ends_completed_holding_their_results() -> None:
    host = Host()
    host.start()
    for step in STEPS:
        assert host.flow.step == step
        host.hear(_done(step, value="hv-2" if step == "claim" else ""))
    assert host.flow.outcome == "completed"
    assert host.flow["claim"] == "hv-2"
    assert host.flow["source"] == "hv-1"
    assert host.flow.done == list(STEPS)
    assert not any(isinstance(e, Undo) for e in host.log)


def test_a_command_the_host_answers_itself_completes_its_step_in_the_same_decision() -> None:
    host = Host(world=World(answers_claim=True))
    events = host.start()
    assert _types(events) == [
        "FlowStarted:",
        "FlowStepStarted:claim",
        "Asked:claim",
        "Done:claim",
        "FlowStepCompleted:claim",
        "FlowStepStarted:prepare",
        "Asked:prepare",
    ]
    assert host.flow.step == "prepare"
    assert host.flow["claim"] == "hv-2"


def test_a_failure_before_the_pivot_undoes_what_was_done_in_reverse() -> None:
    host = Host()
    host.start()
    host.hear(_done("claim"))
    host.hear(_done("prepare"))
    events = host.hear(Broke(flow_id="f-1", step="migrate", reason="no route to host"))
    assert _types(events) == [
        "FlowStepFailed:migrate",
        "FlowStepCompensated:prepare",
        "Undo:prepare",
        "FlowStepCompensated:claim",
        "Undo:claim",
        "FlowFailed:",
    ]
    failed = events[-1]
    assert isinstance(failed, FlowFailed)
    assert failed.reason == "no route to host"
    assert failed.compensated == ("prepare", "claim")
    assert host.flow.outcome == "failed"
    assert not host.flow.stuck


def test_a_deadline_retries_a_step_with_attempts_left_then_fails_it() -> None:
    host = Host()
    host.start()
    host.hear(_done("claim"))
    assert host.tick(29) == []
    events = host.tick(1)
    assert _types(events) == ["FlowStepFailed:prepare", "FlowStepStarted:prepare", "Asked:prepare"]
    assert host.flow.attempt == 2
    events = host.tick(30)
    assert _types(events)[-3:] == ["FlowStepCompensated:claim", "Undo:claim", "FlowFailed:"]
    assert "timed out after 30 s" in host.flow.reason


def test_a_late_completion_of_the_step_that_failed_is_undone() -> None:
    host = Host()
    host.start()
    host.tick(30)  # claim timed out: nothing was done, nothing undone
    assert host.flow.outcome == "failed"
    assert not any(isinstance(e, Undo) for e in host.log)
    events = host.hear(_done("claim", value="hv-2"))
    assert _types(events) == ["FlowStepCompleted:claim", "FlowStepCompensated:claim", "Undo:claim"]
    assert host.hear(_done("claim", value="hv-2")) == []  # and only once


def test_after_the_pivot_a_step_is_retried_then_the_flow_is_stuck_not_undone() -> None:
    host = Host()
    host.start()
    for step in ("claim", "prepare", "migrate"):
        host.hear(_done(step))
    for _ in range(3):
        host.hear(Broke(flow_id="f-1", step="switch", reason="agent gone"))
    assert host.flow.outcome == "failed"
    assert host.flow.stuck
    assert not any(isinstance(e, Undo) for e in host.log)
    assert sum(isinstance(e, Asked) and e.step == "switch" for e in host.log) == 3


def test_repeated_and_foreign_answers_change_nothing() -> None:
    host = Host()
    host.start()
    host.hear(_done("claim"))
    assert host.hear(_done("claim")) == []  # a repeated answer to the previous step
    assert host.hear(Done(flow_id="f-2", step="prepare")) == []  # another flow's
    assert host.start() == []  # the same flow requested again
    assert host.flow.step == "prepare"


# -- any outcomes, in any order ---------------------------------------------------------------

Action = tuple[str, int]
actions = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["done", "broke"]), st.integers(0, len(STEPS) - 1)),
        st.tuples(st.just("tick"), st.integers(0, 45)),
    ),
    max_size=25,
)


def _run(script: list[Action], answers_claim: bool) -> Host:
    host = Host(world=World(answers_claim=answers_claim))
    host.start()
    for kind, arg in script:
        if kind == "tick":
            host.tick(arg)
        else:
            step = STEPS[arg]
            host.now += timedelta(seconds=1)
            host.hear(
                _done(step) if kind == "done" else Broke(flow_id="f-1", step=step, reason="x")
            )
    for _ in range(10):  # time alone ends whatever is left
        host.tick(1000)
    return host


@settings(max_examples=200, deadline=None)
@given(actions, st.booleans())
def test_any_outcomes_end_the_flow_once_undoing_only_what_was_done(
    script: list[Action], answers_claim: bool
) -> None:
    host = _run(script, answers_claim)
    log = host.log
    terminal = [i for i, e in enumerate(log) if isinstance(e, FlowCompleted | FlowFailed)]
    assert len(terminal) == 1
    assert host.flow.outcome != "running"
    after = log[terminal[0] + 1 :]
    assert all(isinstance(e, FlowStepCompleted | FlowStepCompensated | Undo) for e in after)
    assert all(e.late for e in after if isinstance(e, FlowStepCompleted))

    completed = [e.step for e in log if isinstance(e, FlowStepCompleted)]
    undone = [e.step for e in log if isinstance(e, Undo)]
    assert len(set(completed)) == len(completed)
    for i, event in enumerate(log):  # never undone before (or without) being done
        if isinstance(event, Undo):
            assert any(isinstance(e, FlowStepCompleted) and e.step == event.step for e in log[:i])
    assert set(undone) <= {"claim", "prepare"}
    assert len(set(undone)) == len(undone)
    if host.flow.outcome == "completed" or host.flow.stuck:
        assert undone == []
    else:
        assert set(undone) == {s for s in completed if s in ("claim", "prepare")}
        failed = log[terminal[0]]
        assert isinstance(failed, FlowFailed)
        done_in_time = [e.step for e in log[: terminal[0]] if isinstance(e, FlowStepCompleted)]
        assert list(failed.compensated) == [s for s in reversed(done_in_time) if s in undone]
        assert undone[: len(failed.compensated)] == list(failed.compensated)
    assert not any(isinstance(e, FlowStepFailed) for e in after)

    # Replay: the same events folded afresh give the same state, and a snapshot keeps it.
    replayed = Host(world=host.world)
    replayed.append([Emit(e, "f-1", "t-1") for e in log])
    assert replayed.book.flows == host.book.flows
    assert restore_book(snapshot_book(host.book)) == host.book
    # And the same inputs decide the same events.
    assert _run(script, answers_claim).log == log


def test_definitions_are_checked() -> None:
    step = FLOW.steps[0]
    for bad in [(), (step, step)]:
        try:
            FlowDefinition("bad", bad)
        except ValueError:
            continue
        raise AssertionError("accepted a bad definition")
    try:
        FlowDefinition("bad", (step,), pivot="nope")
    except ValueError:
        return
    raise AssertionError("accepted an unknown pivot")
