"""What `POST /v1/rebalance` decides: the current plan, written for the scheduler to run."""

from __future__ import annotations

from virga_events.catalog import api
from virga_events.catalog.common import PlannedMove
from virga_gateway.outcome import Outcome
from virga_gateway.rebalance.fold import latest
from virga_gateway.rebalance.model import AGGREGATE
from virga_gateway.rebalance.plan import current_plan
from virga_gateway.rebalance.views import RunView, run_view
from virga_gateway.state import GatewayState
from virga_runtime.service import Emit


def execute(state: GatewayState, flow_id: str) -> Outcome:
    """RebalanceRequested with the plan as it is now; while a rebalance runs, that one is the
    answer (nothing written): a second plan would be made from a cluster still changing."""
    running = latest(state)
    if running is not None and running.status == "RUNNING":
        shown = run_view(running)
        return Outcome(202, (), lambda s: shown)
    planned = current_plan(state)
    asked = api.RebalanceRequested(
        flow_id=flow_id,
        moves=tuple(
            PlannedMove(instance_id=m.instance_id, source=m.source, destination=m.destination)
            for m in planned.moves
        ),
        score_before=planned.score_before,
        score_after=planned.score_after,
    )
    return Outcome(202, (Emit(asked, AGGREGATE, None),), lambda s: _shown(s, flow_id))


def _shown(state: GatewayState, flow_id: str) -> RunView:
    return run_view(state.rebalances[flow_id])
