"""The process manager's decisions: what a flow does about an event, or about the time.

`FlowManager.start` begins a flow; `decide` takes an input event that completes or fails the
step a flow waits for; `tick` fails every step whose deadline passed. Each returns the events
to append: the flow's own facts (`virga_events.catalog.flows`) and the commands of the steps
it starts or undoes. Pure: the book is never changed here; the runtime folds what is returned
(`virga_runtime.flows.flow_folds`), and a decision works on a copy that sees its own events,
so a command the host answers itself (a claim the scheduler takes at once) completes its step
within the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Generic

import structlog

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
from virga_runtime.flows import C, Flow, FlowBook, FlowDefinition, Step, apply
from virga_runtime.service import Emit

log = structlog.get_logger(__name__)


def flow_id_of(event: object) -> str | None:
    """The flow an event answers: its ``flow_id`` field, if it has a non-empty one."""
    flow_id = getattr(event, "flow_id", None)
    return flow_id if isinstance(flow_id, str) and flow_id else None


class FlowManager(Generic[C]):
    """Runs the flows of some definitions for one hosting service (whose state is `C`)."""

    def __init__(self, *definitions: FlowDefinition[C]) -> None:
        self.definitions: Mapping[str, FlowDefinition[C]] = {d.name: d for d in definitions}

    def start(
        self,
        ctx: C,
        book: FlowBook,
        definition: str,
        flow_id: str,
        *,
        subject: str,
        tenant_id: str | None,
        inputs: Mapping[str, str],
        now: datetime,
    ) -> list[Emit]:
        """Begin a flow (nothing if `flow_id` is known already: a repeated request)."""
        if flow_id in book.flows:
            return []
        run = _Run(self.definitions[definition], ctx, Flow(flow_id, definition, subject, tenant_id))
        run.emit(FlowStarted(definition=definition, subject=subject, inputs=dict(inputs)))
        run.flow.inputs = dict(inputs)
        run.start_step(run.definition.steps[0], 1, now)
        return run.emits

    def decide(self, ctx: C, book: FlowBook, envelope: Envelope[Any]) -> list[Emit]:
        """What the flow an input event answers does about it (nothing for other events)."""
        return self.answer(ctx, book, envelope.payload, envelope.occurred_at)

    def answer(self, ctx: C, book: FlowBook, event: Event, now: datetime) -> list[Emit]:
        """What the flow `event` answers does about it: `decide` for an answer the hosting
        service gives one of its flows itself, outside the step's command (a drain's end)."""
        flow_id = flow_id_of(event)
        flow = book.flows.get(flow_id) if flow_id is not None else None
        if flow is None or flow.definition not in self.definitions:
            return []
        run = _Run(self.definitions[flow.definition], ctx, flow.clone())
        run.answer(event, now)
        return run.emits

    def tick(self, ctx: C, book: FlowBook, now: datetime) -> list[Emit]:
        """Fail every step whose deadline has passed (`FlowStepFailed` ``timed out``)."""
        emits: list[Emit] = []
        for flow in sorted(book.running(), key=lambda f: f.flow_id):
            if flow.step is None or flow.deadline is None or flow.deadline > now:
                continue
            if flow.definition not in self.definitions:
                continue
            run = _Run(self.definitions[flow.definition], ctx, flow.clone())
            step = run.definition.step(flow.step)
            log.info("flow_step_timed_out", flow_id=flow.flow_id, step=step.name)
            run.fail(step, f"{step.name} timed out after {step.timeout.total_seconds():g} s", now)
            emits.extend(run.emits)
        return emits


class _Run(Generic[C]):
    """One decision about one flow: its events so far, applied to a scratch copy."""

    def __init__(self, definition: FlowDefinition[C], ctx: C, flow: Flow) -> None:
        self.definition, self.ctx, self.flow = definition, ctx, flow
        self.book = FlowBook(flows={flow.flow_id: flow})
        self.emits: list[Emit] = []

    def emit(self, event: Event) -> None:
        """Append one of the flow's own facts, and fold it into the scratch copy."""
        self.emits.append(Emit(event, self.flow.flow_id, self.flow.tenant_id))
        apply(self.book, self.flow.flow_id, self.flow.tenant_id, event)

    def send(self, commands: Sequence[Emit], now: datetime) -> None:
        """Append a step's commands; one that already answers the step is taken at once."""
        for command in commands:
            self.emits.append(command)
            if flow_id_of(command.payload) == self.flow.flow_id and self.flow.step is not None:
                self.answer(command.payload, now)

    def start_step(self, step: Step[C], attempt: int, now: datetime) -> None:
        self.emit(FlowStepStarted(step=step.name, attempt=attempt, deadline=now + step.timeout))
        self.send(step.command(self.ctx, self.flow), now)

    def answer(self, event: Event, now: datetime) -> None:
        """Take an event that may complete or fail a step of this flow."""
        flow = self.flow
        named = getattr(event, "step", None)
        if flow.outcome == "running" and flow.step is not None:
            step = self.definition.step(flow.step)
            if isinstance(named, str) and named != step.name:
                return  # an answer to an earlier step, repeated
            if not isinstance(event, step.completed_by + step.failed_by):
                return  # a command, or another step's answer
            if not step.accepts(flow, event):
                log.warning("flow_answer_refused", flow_id=flow.flow_id, step=step.name)
                return
            if isinstance(event, step.completed_by):
                self.complete(step, event, now)
            elif isinstance(event, step.failed_by):
                self.fail(step, str(getattr(event, "reason", "") or type(event).__name__), now)
        elif flow.outcome == "failed" and flow.last_failed is not None:
            self.late(self.definition.step(flow.last_failed), event, named)

    def complete(self, step: Step[C], event: Event, now: datetime) -> None:
        self.emit(FlowStepCompleted(step=step.name, result=step.result(event)))
        following = self.definition.index(step.name) + 1
        if following == len(self.definition.steps):
            log.info("flow_completed", flow_id=self.flow.flow_id, flow=self.definition.name)
            self.emit(FlowCompleted(subject=self.flow.subject))
        else:
            self.start_step(self.definition.steps[following], 1, now)

    def fail(self, step: Step[C], reason: str, now: datetime) -> None:
        attempt = self.flow.attempt
        self.emit(FlowStepFailed(step=step.name, reason=reason))
        if attempt < step.attempts:
            self.start_step(step, attempt + 1, now)
        elif not self.definition.undoable(step.name):
            log.warning("flow_stuck", flow_id=self.flow.flow_id, step=step.name, reason=reason)
            self.emit(FlowFailed(subject=self.flow.subject, reason=reason, stuck=True))
        else:
            undone = [name for name in reversed(self.flow.done) if self._undo(name, now)]
            log.info("flow_failed", flow_id=self.flow.flow_id, step=step.name, undone=undone)
            self.emit(
                FlowFailed(subject=self.flow.subject, reason=reason, compensated=tuple(undone))
            )

    def late(self, step: Step[C], event: Event, named: object) -> None:
        """A completion of the step the flow failed on, after it failed: undo it at once."""
        if step.name in self.flow.done or not isinstance(event, step.completed_by):
            return
        if (isinstance(named, str) and named != step.name) or not step.accepts(self.flow, event):
            return
        log.warning("flow_step_completed_late", flow_id=self.flow.flow_id, step=step.name)
        self.emit(FlowStepCompleted(step=step.name, result=step.result(event), late=True))
        if self.definition.undoable(step.name):
            self._undo(step.name, None)

    def _undo(self, name: str, now: datetime | None) -> bool:
        step = self.definition.step(name)
        if step.compensate is None or name in self.flow.compensated:
            return False
        self.emit(FlowStepCompensated(step=name))
        self.emits.extend(step.compensate(self.ctx, self.flow))
        return True
