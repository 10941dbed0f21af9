"""Executing a rebalancing plan: its moves live-migrated in order, a bounded number at a time.

The plan is made where the admin asks for it, the gateway (`virga_rebalance`, from the
hosts, instances and server groups it folds), and arrives as `RebalanceRequested`. The
scheduler runs it with the drain's machinery (`drain.py`: the flow `rebalance`, whose step
starts at most `SchedulerConfig.drain_parallel` migrations at once, each asking for its
planned destination). Nothing of the plan is trusted: each migration's `claim` step checks
the destination against every placement filter as the cluster is then, so a move that became
invalid fails there (the instance runs on where it was), and an instance no longer on its
planned source is skipped.
"""

from __future__ import annotations

import structlog

from virga_events import Envelope
from virga_events.catalog.api import RebalanceRequested
from virga_runtime.service import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.drain import DRAINS, REBALANCE, Draining
from virga_scheduler.core.model import SchedulerState

log = structlog.get_logger(__name__)


def requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[RebalanceRequested]
) -> list[Emit]:
    """Start the plan's flow, unless a rebalance runs (one at a time: a second plan was made
    from a cluster the first is still changing)."""
    if any(f.definition == REBALANCE for f in state.flows.running()):
        log.info("rebalance_already_running", flow_id=envelope.payload.flow_id)
        return []
    moves, seen = [], set()
    for move in envelope.payload.moves:
        if move.instance_id not in seen:  # a plan moves an instance once; a repeat is noise
            seen.add(move.instance_id)
            moves.append(move)
    log.info("rebalance_started", flow_id=envelope.payload.flow_id, moves=len(moves))
    return DRAINS.start(
        Draining(config, state, envelope.occurred_at),
        state.flows,
        REBALANCE,
        envelope.payload.flow_id,
        subject=envelope.aggregate_id,
        tenant_id=None,
        inputs={
            "instances": ",".join(m.instance_id for m in moves),
            "sources": ",".join(m.source for m in moves),
            "destinations": ",".join(m.destination for m in moves),
        },
        now=envelope.occurred_at,
    )
