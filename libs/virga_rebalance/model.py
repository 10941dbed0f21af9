"""The rebalancer's inputs and its plan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class HostInput:
    """A host as the planner sees it: what it may sell, what it holds, whether it counts."""

    name: str
    rack: str
    zone: str
    vcpus: float
    """vCPU limit: physical vCPUs times the host's allocation ratio."""
    ram_mb: float
    """RAM limit in MB: physical RAM times the host's allocation ratio."""
    disk_gb: float
    """Disk limit in GB: physical disk times the host's allocation ratio."""
    used_vcpus: int = 0
    """vCPUs its claims hold (an in-flight migration's hold on it included)."""
    used_ram_mb: int = 0
    used_disk_gb: int = 0
    traits: frozenset[str] = frozenset()
    schedulable: bool = True
    """Up, enabled and not draining: only such hosts are scored, moved from or moved to."""
    receives: bool = True
    """It announced a live-migration endpoint: without one it cannot be a destination."""


@dataclass(frozen=True, slots=True)
class InstanceInput:
    """An instance holding a claim on ``host``."""

    id: str
    host: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    zone: str | None = None
    """The zone it asked for; a move stays in it. None: any zone."""
    group: str | None = None
    """Its server group, whose policy every move honours."""
    traits: frozenset[str] = frozenset()
    """Traits it requires of its host."""
    movable: bool = True
    """RUNNING and not migrating: only such an instance is live-migrated (others still count
    as usage and as server-group members)."""


@dataclass(frozen=True, slots=True)
class Group:
    """A server group's policy: members together (affinity) or apart, per host or rack."""

    id: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]


@dataclass(frozen=True, slots=True)
class Options:
    """How far the planner goes."""

    max_moves: int = 100
    """At most this many moves in a plan."""
    min_gain: float = 1e-6
    """Stop when the best move lowers the score by no more than this."""
    ram_weight: float = 1.0
    """Weight of the spread of RAM utilisation in the score."""
    vcpu_weight: float = 1.0
    """Weight of the spread of vCPU utilisation in the score."""
    candidates: int = 12
    """Moves are sought from this many of the most and to this many of the least utilised
    hosts each round: the best move almost always joins the two ends, and looking at k hosts,
    not all, keeps a round cheap at 1,000 hosts. The price: a member of a host-affinity group
    moves only to where another member runs, rarely among the least utilised, so such members
    seldom move (a rule kept, a gain missed)."""


@dataclass(frozen=True, slots=True)
class Move:
    """Live-migrate ``instance_id`` from ``source`` to ``destination``."""

    instance_id: str
    source: str
    destination: str
    score_after: float
    """The cluster's score once this move and every one before it are made."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Moves in the order to make them, and the score before and after all of them."""

    moves: tuple[Move, ...]
    score_before: float
    score_after: float
