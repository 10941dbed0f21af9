"""Multi-step flows across services as a process manager (saga): definitions and state.

A flow is declared as data (`FlowDefinition`: named `Step`s, each with the command it sends,
the events that complete or fail it, a timeout, a compensation, and a pivot step after which
the flow only goes forward). Its state (`Flow`: which step it is in, what it holds) is folded
from its own events (`virga_events.catalog.flows`) like any other state, so a rebuild brings
every flow back where it was. The decisions live in `virga_runtime.flow_manager`.

Pure: imports nothing but the contract and the runtime's declarations, so a service's `core`
may use it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from virga_events import Envelope, Event
from virga_events.catalog.flows import (
    FlowCompleted,
    FlowFailed,
    FlowStarted,
    FlowStepCompensated,
    FlowStepCompleted,
    FlowStepFailed,
    FlowStepStarted,
)
from virga_runtime.folding import Folds
from virga_runtime.service import Emit

C = TypeVar("C")
"""What commands read besides the flow: the hosting service's state."""
S = TypeVar("S")

Outcome = Literal["running", "completed", "failed"]

FINISHED_LIMIT = 10_000
"""Finished flows remembered, so a late or repeated event about one finds it (and a late
completion of a step it gave up on is compensated) rather than being taken for a new one."""

FLOW_EVENTS: tuple[type[Event], ...] = (
    FlowStarted,
    FlowStepStarted,
    FlowStepCompleted,
    FlowStepFailed,
    FlowStepCompensated,
    FlowCompleted,
    FlowFailed,
)


@dataclass(slots=True)
class Flow:
    """One flow instance as its events tell it."""

    flow_id: str
    definition: str
    subject: str
    tenant_id: str | None = None
    inputs: dict[str, str] = field(default_factory=dict)
    held: dict[str, str] = field(default_factory=dict)
    """What completed steps returned (`Step.result`), merged in step order."""
    step: str | None = None
    """The step waited for (None before the first and once finished)."""
    attempt: int = 0
    deadline: datetime | None = None
    done: list[str] = field(default_factory=list)
    """Completed steps, in the order they completed."""
    compensated: list[str] = field(default_factory=list)
    """Steps whose compensation was sent, in that order."""
    last_failed: str | None = None
    """The step that failed last: once the flow failed, a late completion of it is undone."""
    outcome: Outcome = "running"
    reason: str = ""
    """Why the last step failed (a compensation may say it), then why the flow failed."""
    stuck: bool = False

    def __getitem__(self, key: str) -> str:
        """An input, or what a completed step returned (a step's result wins)."""
        return self.held[key] if key in self.held else self.inputs[key]

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.held.get(key, self.inputs.get(key, default))

    def clone(self) -> Flow:
        return Flow(**{**_fields(self), **_copied_lists(self)})


def _fields(flow: Flow) -> dict[str, Any]:
    return {name: getattr(flow, name) for name in Flow.__dataclass_fields__}


def _copied_lists(flow: Flow) -> dict[str, Any]:
    return {
        "inputs": dict(flow.inputs),
        "held": dict(flow.held),
        "done": list(flow.done),
        "compensated": list(flow.compensated),
    }


Command = Callable[[C, Flow], Sequence[Emit]]
"""What a step (or its compensation) asks of other services, given the host's state."""


def _no_result(_event: Any) -> dict[str, str]:
    return {}


def _anyone(_flow: Flow, _event: Any) -> bool:
    return True


@dataclass(frozen=True)
class Step(Generic[C]):
    """One step: a command sent, then one of its completion or failure events awaited.

    Events match a flow by their ``flow_id`` field, and (when they carry one) their ``step``
    field; so a receiver that deduplicates on (flow id, step) may answer a re-sent command
    with the same fact, and the flow takes it once.
    """

    name: str
    command: Command[C]
    completed_by: tuple[type[Event], ...]
    failed_by: tuple[type[Event], ...] = ()
    timeout: timedelta = timedelta(seconds=60)
    compensate: Command[C] | None = None
    """Undoes the step once completed; only steps before the pivot are ever undone."""
    result: Callable[[Any], dict[str, str]] = _no_result
    """What the flow holds from the completion event (read back as ``flow[key]``)."""
    attempts: int = 1
    """Tries (the command re-sent) before the step fails for good."""
    accepts: Callable[[Flow, Any], bool] = _anyone
    """Whether an answer comes from whom the step asked (the host that must answer names
    itself in it): any other is ignored, so no host answers for another."""


@dataclass(frozen=True)
class FlowDefinition(Generic[C]):
    """A flow's steps in order. A failure up to and including the `pivot` step undoes the
    steps completed before it, in reverse; after the pivot the flow only goes forward, each
    step retried up to its attempts, and a step that still fails leaves the flow stuck."""

    name: str
    steps: tuple[Step[C], ...]
    pivot: str | None = None
    """None: every step may be undone (as if the last step were the pivot)."""

    def __post_init__(self) -> None:
        names = [step.name for step in self.steps]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"flow {self.name}: steps must be named, once each")
        if self.pivot is not None and self.pivot not in names:
            raise ValueError(f"flow {self.name}: pivot {self.pivot} is not a step")

    def step(self, name: str) -> Step[C]:
        return self.steps[self.index(name)]

    def index(self, name: str) -> int:
        for i, step in enumerate(self.steps):
            if step.name == name:
                return i
        raise KeyError(f"flow {self.name} has no step {name}")

    def undoable(self, name: str) -> bool:
        """Whether a failure of `name` undoes what was done before (it is not past the pivot)."""
        pivot = len(self.steps) - 1 if self.pivot is None else self.index(self.pivot)
        return self.index(name) <= pivot


@dataclass(slots=True)
class FlowBook:
    """Every flow the hosting service runs, and the finished ones it still remembers."""

    flows: dict[str, Flow] = field(default_factory=dict)
    finished: dict[str, None] = field(default_factory=dict)
    """Finished flow ids, oldest first (bounded by FINISHED_LIMIT)."""

    def running(self) -> list[Flow]:
        return [flow for flow in self.flows.values() if flow.outcome == "running"]


# -- the fold ---------------------------------------------------------------------------------


def apply(book: FlowBook, flow_id: str, tenant_id: str | None, event: Event) -> None:
    """Fold one flow event about `flow_id` into `book` (also used on a scratch copy while
    deciding, so a decision sees its own earlier events)."""
    if isinstance(event, FlowStarted):
        if flow_id not in book.flows:
            book.flows[flow_id] = Flow(
                flow_id, event.definition, event.subject, tenant_id, dict(event.inputs)
            )
        return
    flow = book.flows.get(flow_id)
    if flow is None:
        return  # its start was forgotten long ago: nothing to change
    _apply_to(flow, event)
    if flow.outcome != "running" and flow_id not in book.finished:
        book.finished[flow_id] = None
        while len(book.finished) > FINISHED_LIMIT:
            oldest = next(iter(book.finished))
            del book.finished[oldest]
            book.flows.pop(oldest, None)


def _apply_to(flow: Flow, event: Event) -> None:
    match event:
        case FlowStepStarted():
            flow.step, flow.attempt, flow.deadline = event.step, event.attempt, event.deadline
        case FlowStepCompleted():
            if event.step not in flow.done:
                flow.done.append(event.step)
                flow.held.update(event.result)
            if flow.step == event.step:
                flow.step, flow.deadline = None, None
        case FlowStepFailed():
            flow.deadline, flow.last_failed, flow.reason = None, event.step, event.reason
            if flow.step == event.step:
                flow.step = None
        case FlowStepCompensated():
            if event.step not in flow.compensated:
                flow.compensated.append(event.step)
        case FlowCompleted():
            flow.outcome, flow.step, flow.deadline = "completed", None, None
        case FlowFailed():
            flow.outcome, flow.reason, flow.stuck = "failed", event.reason, event.stuck
            flow.step, flow.deadline = None, None
        case _:
            pass


def flow_folds(book_of: Callable[[S], FlowBook]) -> Folds[S]:
    """The folds of the flow events, for a hosting service to `include` in its own."""
    folds: Folds[S] = Folds()

    def fold(state: S, envelope: Envelope[Any], event: Any) -> None:
        apply(book_of(state), envelope.aggregate_id, envelope.tenant_id, event)

    for event_type in FLOW_EVENTS:
        folds.add(event_type, fold)
    return folds


# -- snapshots --------------------------------------------------------------------------------


def snapshot_book(book: FlowBook) -> dict[str, Any]:
    """The book as JSON-able data (a hosting service's snapshot carries it)."""
    flows = []
    for flow in book.flows.values():
        data = _fields(flow)
        data["deadline"] = None if flow.deadline is None else flow.deadline.isoformat()
        flows.append(data)
    return {"flows": flows, "finished": list(book.finished)}


def restore_book(data: dict[str, Any]) -> FlowBook:
    """The inverse of `snapshot_book`."""
    book = FlowBook(finished=dict.fromkeys(data["finished"]))
    for raw in data["flows"]:
        deadline = raw["deadline"]
        flow = Flow(
            **{**raw, "deadline": None if deadline is None else datetime.fromisoformat(deadline)}
        )
        book.flows[flow.flow_id] = flow.clone()
    return book
