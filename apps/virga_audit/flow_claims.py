"""What `audit check` knows of flows (`virga_runtime.flows`): the claims a live migration holds
on its destination and a resize of its new flavor, whether every flow ended, and whether a
host drain that ended left what it moved on the host.

A flow's destination claim counts against its host as any claim does; it must be gone (moved
to the instance, or released) by the time the flow ends, or it is a leaked claim. A flow
without news for longer than the check's patience, or one that ended stuck after its pivot,
is reported: an operator's matter, never a silent loss. A host drain's migrations (flows whose
`drain` input names it) are news of the drain, so a long drain is not taken for a stuck one;
when it ends (`HostDrained`, `HostDrainFailed`), none of its migrations may still run and no
instance it says it moved may hold its claim on the host (`undrained`). A rebalance is held to
the same (its migrations name it in `drain` too): when it ends (`RebalanceFinished`), none of
them may still run and no instance it says it moved may hold its claim on its planned source.
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
    scheduler.ResizeClaimed,
    scheduler.ResizeClaimReleased,
    scheduler.ResizeClaimMoved,
    scheduler.HostDrained,
    scheduler.HostDrainFailed,
    scheduler.RebalanceFinished,
    flows.FlowStarted,
    flows.FlowStepStarted,
    flows.FlowStepCompleted,
    flows.FlowStepFailed,
    flows.FlowStepCompensated,
    flows.FlowCompleted,
    flows.FlowFailed,
)
"""The facts `fold_flow` takes."""

FlowKind = Literal["stuck", "leaked-claim", "undrained"]


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
    drain_of: dict[str, str] = field(default_factory=dict)
    """Flow id of a host drain's running migration -> the drain's flow id."""
    undrained: list[tuple[str, str]] = field(default_factory=list)
    """(host, detail) of drains (and rebalances) that ended with an instance they moved still
    there."""
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    """Flow id of a running rebalance -> instance -> its planned source."""

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
        # A resize's hold of the new flavor, as a migration's of its destination.
        case scheduler.ResizeClaimed():
            model.held[event.flow_id] = FlowClaim(key, event.host, event.flavor)
        case scheduler.ResizeClaimReleased():
            held = model.held.get(event.flow_id)
            if held is not None and held.host == event.host:
                del model.held[event.flow_id]
        case scheduler.ResizeClaimMoved():
            held = model.held.pop(event.flow_id, None)
            if held is not None and key in claims:
                claims[key] = (held.host, held.flavor)
        case flows.FlowStarted():
            model.running[key] = (event.subject, at)
            if event.inputs.get("drain"):
                model.drain_of[key] = event.inputs["drain"]
            if event.definition == "rebalance":
                planned = zip(
                    event.inputs.get("instances", "").split(","),
                    event.inputs.get("sources", "").split(","),
                    strict=False,
                )
                model.sources[key] = {i: s for i, s in planned if i}
        case scheduler.HostDrained() | scheduler.HostDrainFailed():
            _drain_ended(model, key, event, claims)
        case scheduler.RebalanceFinished():
            _rebalance_ended(model, event, claims)
        case flows.FlowCompleted() | flows.FlowFailed():
            model.running.pop(key, None)
            model.drain_of.pop(key, None)
            if isinstance(event, flows.FlowFailed) and event.stuck:
                model.stuck[key] = (event.subject, event.reason)
            held = model.held.pop(key, None)
            if held is not None:
                detail = f"claim on {held.host} outlived its flow {key}"
                model.leaked.append((held.instance_id, detail))
        case _:
            if key in model.running:
                model.running[key] = (model.running[key][0], at)
    drain = model.drain_of.get(key)
    if drain is not None and drain in model.running:
        model.running[drain] = (model.running[drain][0], at)


def _drain_ended(
    model: FlowModel,
    host: str,
    event: scheduler.HostDrained | scheduler.HostDrainFailed,
    claims: dict[str, tuple[str, Flavor]],
) -> None:
    for flow_id, drain in sorted(model.drain_of.items()):
        if drain == event.flow_id:
            detail = f"drain {drain} ended while its migration {flow_id} runs"
            model.undrained.append((host, detail))
    for instance_id in event.moved:
        held = claims.get(instance_id)
        if held is not None and held[0] == host:
            detail = f"drain {event.flow_id} moved instance {instance_id}, which is still here"
            model.undrained.append((host, detail))


def _rebalance_ended(
    model: FlowModel, event: scheduler.RebalanceFinished, claims: dict[str, tuple[str, Flavor]]
) -> None:
    sources = model.sources.pop(event.flow_id, {})
    for flow_id, batch in sorted(model.drain_of.items()):
        if batch == event.flow_id:
            source = sources.get(flow_id.rpartition("/")[2], "rebalance")
            detail = f"rebalance {batch} ended while its migration {flow_id} runs"
            model.undrained.append((source, detail))
    for instance_id in event.moved:
        held, planned = claims.get(instance_id), sources.get(instance_id)
        if held is not None and held[0] == planned:
            detail = f"rebalance {event.flow_id} moved instance {instance_id}, which is still here"
            model.undrained.append((held[0], detail))


def flow_findings(
    model: FlowModel, now: datetime, stuck_after: timedelta
) -> list[tuple[FlowKind, str, str]]:
    """(kind, resource, detail) of every flow problem as of `now`."""
    found: list[tuple[FlowKind, str, str]] = [
        ("leaked-claim", instance, detail) for instance, detail in model.leaked
    ]
    found += [("undrained", host, detail) for host, detail in model.undrained]
    for flow_id, (subject, reason) in sorted(model.stuck.items()):
        found.append(("stuck", subject, f"flow {flow_id} ended stuck after its pivot: {reason}"))
    for flow_id, (subject, last) in sorted(model.running.items()):
        if now - last > stuck_after:
            found.append(
                ("stuck", subject, f"flow {flow_id} has had no news since {last.isoformat()}")
            )
    return found
