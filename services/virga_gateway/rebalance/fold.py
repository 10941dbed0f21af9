"""How a rebalance folds into the projection, in any order across topics: its plan from the
request (RebalanceRequested), its migrations from the scheduler's flows (each `live-migration`
whose `by` input is ``rebalance`` and whose `drain` input names it: flow id
``<rebalance>/<instance>``), FINISHED from its end (RebalanceFinished). `GatewayState.rebalances`
holds them by flow id (an admin runs a few); `GET /v1/rebalance` shows the latest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api, flows, scheduler
from virga_gateway.rebalance.model import PlannedMove, Rebalance
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

REBALANCE = "rebalance"
"""The `by` input of a rebalance's migrations (and the rebalance flow's definition)."""

folds: Folds[GatewayState] = Folds()


def _record(state: GatewayState, flow_id: str) -> Rebalance:
    record = state.rebalances.get(flow_id)
    if record is None:
        record = state.rebalances[flow_id] = Rebalance(id=flow_id)
    return record


@folds.on(api.RebalanceRequested)
def _requested(state: GatewayState, env: Envelope, event: api.RebalanceRequested) -> None:
    record = _record(state, event.flow_id)
    record.requested_at = env.occurred_at
    record.moves = [PlannedMove(m.instance_id, m.source, m.destination) for m in event.moves]
    record.score_before, record.score_after = event.score_before, event.score_after


@folds.on(flows.FlowStarted)
def _started(state: GatewayState, env: Envelope, event: flows.FlowStarted) -> None:
    if event.inputs.get("by") != REBALANCE or not event.inputs.get("drain"):
        return
    record = _record(state, event.inputs["drain"])
    done = (*record.moved, *record.unmoved, *record.moving)
    if record.status == "RUNNING" and event.subject not in done:
        record.moving.append(event.subject)


def _ended(
    state: GatewayState, env: Envelope, event: flows.FlowCompleted | flows.FlowFailed
) -> None:
    parent, _, instance_id = env.aggregate_id.rpartition("/")
    record = state.rebalances.get(parent) if parent else None
    if record is None or instance_id not in record.moving:
        return
    record.moving.remove(instance_id)
    done = record.moved if isinstance(event, flows.FlowCompleted) else record.unmoved
    if instance_id not in done:
        done.append(instance_id)


folds.add(flows.FlowCompleted, _ended)
folds.add(flows.FlowFailed, _ended)


@folds.on(scheduler.RebalanceFinished)
def _finished(state: GatewayState, env: Envelope, event: scheduler.RebalanceFinished) -> None:
    record = _record(state, event.flow_id)
    record.status, record.moving = "FINISHED", []
    record.moved, record.unmoved = list(event.moved), list(event.unmoved)
    record.skipped = list(event.skipped)


def latest(state: GatewayState) -> Rebalance | None:
    """The rebalance asked for last (by its request's event time, then id)."""
    asked = [r for r in state.rebalances.values() if r.requested_at is not None]
    return max(asked, key=lambda r: (r.requested_at, r.id), default=None)
