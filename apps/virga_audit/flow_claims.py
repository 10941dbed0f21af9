"""What `audit check` knows of flows (`virga_runtime.flows`): the claims a live migration holds
on its destination, and whether every flow ended.

A flow's destination claim counts against its host as any claim does; it must be gone (moved
to the instance, or released) by the time the flow ends, or it is a leaked claim. A flow
without news for longer than the check's patience, or one that ended stuck after its pivot,
is reported: an operator's matter, never a silent loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from virga_events import Envelope
from virga_events.catalog import flows, scheduler
from virga_events.catalog.common import Flavor

FLOW_FACTS = (
    scheduler.MigrationDestinationClaimed,
    scheduler.MigrationDestinationReleased,
    scheduler.MigrationClaimMoved,
    flows.FlowStarted,
    flows.FlowStepStarted,
    flows.FlowStepCompleted,
    flows.FlowStepFailed,
    flows.FlowStepCompensated,
    flows.FlowCompleted,
    flows.FlowFailed,
)
"""The facts `fold_flow` takes."""

FlowKind = Literal["stuck", "leaked-claim"]


@dataclass(frozen=True, slots=True)
class FlowClaim:
    instance_id: str
    host: str
    flavor: Flavor


@dataclass(slots=True)
class FlowModel:
    """The flows of the log as the auditor folds them."""

    held: dict[str, FlowClaim] = field(default_factory=dict)
    """Flow id -> the destination claim it holds."""
    running: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """Flow id -> (its subject, event time of its newest fact), until it ends."""
    stuck: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Flow id -> (its subject, reason) of flows that ended stuck after their pivot."""
    leaked: list[tuple[str, str]] = field(default_factory=list)
    """(instance, detail) of claims a flow still held when it ended."""

    def on_host(self, host: str) -> list[Flavor]:
        return [claim.flavor for claim in self.held.values() if claim.host == host]


def fold_flow(model: FlowModel, envelope: Envelope, claims: dict[str, tuple[str, Flavor]]) -> None:
    """Fold one flow fact; `claims` are the instances' claims (a moved claim changes one)."""
    event, key, at = envelope.payload, envelope.aggregate_id, envelope.occurred_at
    match event:
        case scheduler.MigrationDestinationClaimed():
            model.held[event.flow_id] = FlowClaim(key, event.host, event.flavor)
        case scheduler.MigrationDestinationReleased():
            held = model.held.get(event.flow_id)
            if held is not None and held.host == event.host:
                del model.held[event.flow_id]
        case scheduler.MigrationClaimMoved():
            held = model.held.pop(event.flow_id, None)
            if held is not None:
                claims[key] = (held.host, held.flavor)
        case flows.FlowStarted():
            model.running[key] = (event.subject, at)
        case flows.FlowCompleted() | flows.FlowFailed():
            model.running.pop(key, None)
            if isinstance(event, flows.FlowFailed) and event.stuck:
                model.stuck[key] = (event.subject, event.reason)
            held = model.held.pop(key, None)
            if held is not None:
                detail = f"claim on {held.host} outlived its flow {key}"
                model.leaked.append((held.instance_id, detail))
        case _:
            if key in model.running:
                model.running[key] = (model.running[key][0], at)


def flow_findings(
    model: FlowModel, now: datetime, stuck_after: timedelta
) -> list[tuple[FlowKind, str, str]]:
    """(kind, resource, detail) of every flow problem as of `now`."""
    found: list[tuple[FlowKind, str, str]] = [
        ("leaked-claim", instance, detail) for instance, detail in model.leaked
    ]
    for flow_id, (subject, reason) in sorted(model.stuck.items()):
        found.append(("stuck", subject, f"flow {flow_id} ended stuck after its pivot: {reason}"))
    for flow_id, (subject, last) in sorted(model.running.items()):
        if now - last > stuck_after:
            found.append(
                ("stuck", subject, f"flow {flow_id} has had no news since {last.isoformat()}")
            )
    return found
