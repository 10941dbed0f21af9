"""The projection's record of the latest rebalance the scheduler ran (or runs)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

AGGREGATE = "rebalance"
"""Aggregate id of `RebalanceRequested` and `RebalanceFinished`."""

RebalanceStatus = Literal["RUNNING", "FINISHED"]


class PlannedMove(msgspec.Struct, frozen=True):
    instance_id: str
    source: str
    destination: str


class Rebalance(msgspec.Struct, kw_only=True):
    """A rebalance asked for and where it stands; a stub until its request is folded (the
    scheduler's facts about it may come first in a rebuild)."""

    id: str
    requested_at: datetime | None = None
    """Event time of its RebalanceRequested: the latest is the one `GET` shows."""
    status: RebalanceStatus = "RUNNING"
    moves: list[PlannedMove] = msgspec.field(default_factory=list)
    score_before: float = 0.0
    score_after: float = 0.0
    """The plan's score once every move is made, as planned."""
    moving: list[str] = msgspec.field(default_factory=list)
    moved: list[str] = msgspec.field(default_factory=list)
    unmoved: list[str] = msgspec.field(default_factory=list)
    """Their migration failed (the move became invalid, or the migration itself failed)."""
    skipped: list[str] = msgspec.field(default_factory=list)
    """They left their planned source (deleted, stopped, moved) before their turn."""
