"""Response bodies of rebalancing."""

from __future__ import annotations

import msgspec

from virga_gateway.rebalance.model import Rebalance, RebalanceStatus
from virga_rebalance import Plan


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class MoveView(_View):
    instance_id: str
    source: str
    destination: str
    score_after: float | None = None
    """The cluster's score once this move and those before it are made (in a plan)."""


class RunView(_View):
    """The latest rebalance executed and where it stands."""

    id: str
    status: RebalanceStatus
    """RUNNING while moves run; FINISHED once every move had its one try."""
    moves: list[MoveView]
    """The plan it executes, in order."""
    score_before: float
    score_after: float
    moving: list[str]
    moved: list[str]
    unmoved: list[str]
    """Their migration failed (the move was no longer allowed, or the migration failed)."""
    skipped: list[str]
    """They left their planned source before their turn."""


class RebalanceView(_View):
    moves: list[MoveView]
    """The proposed live migrations, in the order to make them (empty: balanced enough)."""
    score_before: float
    """The cluster's imbalance now: the spread (standard deviation) of the schedulable hosts'
    RAM utilisation plus that of their vCPU utilisation."""
    score_after: float
    """The imbalance once every proposed move is made."""
    last_run: RunView | None
    """The latest rebalance executed (`POST /v1/rebalance`), or null."""


def run_view(record: Rebalance) -> RunView:
    return RunView(
        id=record.id,
        status=record.status,
        moves=[
            MoveView(instance_id=m.instance_id, source=m.source, destination=m.destination)
            for m in record.moves
        ],
        score_before=record.score_before,
        score_after=record.score_after,
        moving=list(record.moving),
        moved=list(record.moved),
        unmoved=list(record.unmoved),
        skipped=list(record.skipped),
    )


def rebalance_view(plan: Plan, last: Rebalance | None) -> RebalanceView:
    return RebalanceView(
        moves=[
            MoveView(
                instance_id=m.instance_id,
                source=m.source,
                destination=m.destination,
                score_after=m.score_after,
            )
            for m in plan.moves
        ],
        score_before=plan.score_before,
        score_after=plan.score_after,
        last_run=run_view(last) if last is not None else None,
    )
