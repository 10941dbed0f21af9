"""Facts of a process manager (`virga_runtime.flows`): one flow's life, step by step.

A flow is hosted by the service that owns its outcome and writes these to that service's
topic; the aggregate id is the flow id. The commands a step sends, and the facts that complete
or fail it, are ordinary events of the services involved, each carrying the ``flow_id`` (and
the step name where a receiver must deduplicate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from virga_events.registry import Event, event


@event("FlowStarted")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStarted(Event):
    """A flow of `definition` began about `subject` (an instance, a host) with `inputs`."""

    definition: str
    subject: str
    inputs: dict[str, str] = field(default_factory=dict)


@event("FlowStepStarted")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStepStarted(Event):
    """The flow sent the command of `step` (try `attempt`) and waits for it until `deadline`."""

    step: str
    attempt: int
    deadline: datetime


@event("FlowStepCompleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStepCompleted(Event):
    """`step` is done; `result` is what the flow holds from it (a destination host...)."""

    step: str
    result: dict[str, str] = field(default_factory=dict)
    late: bool = False
    """It came after the flow had failed the step (a timeout): it is compensated at once."""


@event("FlowStepFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStepFailed(Event):
    """`step` failed (its failure event, or its deadline passed: ``timed out``)."""

    step: str
    reason: str


@event("FlowStepCompensated")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowStepCompensated(Event):
    """The flow sent the compensation of the completed `step` (idempotent, not awaited)."""

    step: str


@event("FlowCompleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowCompleted(Event):
    """Every step is done: the flow's terminal state on success."""

    subject: str


@event("FlowFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlowFailed(Event):
    """The flow's terminal state on failure, after its compensations were sent.

    Before the pivot step completed, what was done is undone (`compensated`, in that order);
    after it, a step that failed every attempt leaves the flow `stuck`: an operator's matter
    (``audit check`` reports it), never a silent loss.
    """

    subject: str
    reason: str
    compensated: tuple[str, ...] = ()
    stuck: bool = False
