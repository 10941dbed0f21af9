"""Host selection: the best-ranked host that passes every filter, or a sentence saying why none did.

The result is what Nova's filter scheduler would give (run every filter on every host, then
take the best weighed host) computed without touching every host: hosts are walked best-first
and the first that passes wins, since nothing ranked below it could beat it. The walk only
skips hosts a filter would refuse anyway: down or disabled hosts, other zones, hosts outside
the few a required trait or an affinity group allows, and hosts scoring below the request's
own size. Nothing here logs; the caller logs the rejections.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from math import isqrt

from .filters import (
    HostFilter,
    availability_zone,
    capacity,
    excluded,
    server_group,
    status,
    traits,
)
from .model import Host, PlacementRequest, Rejection
from .view import PlacementView
from .weighers import Weigher

FILTERS: tuple[tuple[str, HostFilter], ...] = (
    (status.NAME, status.status),
    (excluded.NAME, excluded.excluded),
    (availability_zone.NAME, availability_zone.availability_zone),
    (traits.NAME, traits.traits),
    (server_group.NAME, server_group.server_group),
    (capacity.NAME, capacity.capacity),
)
"""Filters in the order they run. A host is reported under the first that refuses it, so the
order is chosen for the explanation: a down host is "down" whatever its free RAM, and capacity
comes last so "without 4 vCPU free" counts only hosts that would otherwise have been fine."""

_FILTER_RANK = {name: rank for rank, (name, _) in enumerate(FILTERS)}
_MAX_CAUSES = 6  # a summary is a sentence, not a report: the rejections carry the rest


@dataclass(frozen=True, slots=True)
class Policy:
    """Operator choices that shape placement."""

    weigher: Weigher = Weigher.SPREAD
    """Spread instances out (default) or pack them onto the fullest hosts that fit."""


DEFAULT_POLICY = Policy()


@dataclass(frozen=True, slots=True)
class Placement:
    """The request fits on ``host``."""

    instance_id: str
    """The placed instance."""
    host: str
    """The chosen host; the caller claims it and emits ``InstanceScheduled``."""
    rejections: tuple[Rejection, ...]
    """Why each better-ranked host was passed over (hosts ranked below were never examined)."""


@dataclass(frozen=True, slots=True)
class NoValidHost:
    """No host can take the request."""

    instance_id: str
    """The instance that could not be placed."""
    reason: str
    """One sentence for the user, e.g. "no host fits: 2 hosts down, 3 hosts without 4 vCPU
    free"."""
    rejections: tuple[Rejection, ...]
    """One rejection per known host, sorted by host name."""


def select_host(
    request: PlacementRequest, view: PlacementView, policy: Policy = DEFAULT_POLICY
) -> Placement | NoValidHost:
    """Choose a host for ``request``. Deterministic: equal inputs give equal results."""
    passed_over: dict[str, Rejection] = {}
    for name in _candidates(request, view, policy.weigher):
        rejection = first_rejection(view.hosts[name], request, view)
        if rejection is None:
            return Placement(request.instance_id, name, tuple(passed_over.values()))
        passed_over[name] = rejection
    # Nothing fits. The walk skipped hosts that could not win; to explain the refusal, every
    # host needs its reason. That is a pass over the fleet, but only when the answer is "no".
    every = (
        passed_over.get(name) or first_rejection(view.hosts[name], request, view)
        for name in view.host_names()
    )
    rejections = tuple(r for r in every if r is not None)
    return NoValidHost(request.instance_id, explain(rejections), rejections)


def first_rejection(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    """The first filter's refusal of ``host``, or None when every filter lets it through."""
    for _, host_filter in FILTERS:
        rejection = host_filter(host, request, view)
        if rejection is not None:
            return rejection
    return None


def explain(rejections: Sequence[Rejection]) -> str:
    """Summarize refusals as one sentence, counting hosts per cause in filter order."""
    if not rejections:
        return "no host fits: there are no hosts"
    counts = Counter((r.filter, r.kind) for r in rejections)
    causes = sorted(counts.items(), key=lambda c: (_FILTER_RANK.get(c[0][0], 99), -c[1], c[0][1]))
    parts = [f"{n} {'host' if n == 1 else 'hosts'} {kind}" for (_, kind), n in causes]
    if len(parts) > _MAX_CAUSES:
        rest = sum(n for _, n in causes[_MAX_CAUSES - 1 :])
        parts[_MAX_CAUSES - 1 :] = [f"{rest} {'host' if rest == 1 else 'hosts'} for other reasons"]
    return "no host fits: " + ", ".join(parts)


def _candidates(request: PlacementRequest, view: PlacementView, weigher: Weigher) -> Iterator[str]:
    """Host names best-first, leaving out only hosts some filter would refuse."""
    few = _few_candidates(request, view)
    if few is not None:
        yield from sorted(few, key=lambda name: view.rank_key(weigher, name))
        return
    yield from view.ranked(weigher, request.availability_zone, view.request_score(request))


def _few_candidates(request: PlacementRequest, view: PlacementView) -> frozenset[str] | None:
    """The hosts a required trait or a placed affinity group confines the request to, when
    they are few enough to rank on the spot; None when the walk is cheaper.

    Ranking k hosts costs about k·log k; walking the fleet order to reach one of them costs
    about n/k host checks. Below k = √n ranking wins, above it walking does.
    """
    confined = [view.hosts_with_trait(t) for t in sorted(request.required_traits)]
    group = view.server_group(request.server_group_id) if request.server_group_id else None
    if group is not None and group.policy == "affinity":
        placed = view.member_locations(group, excluding=request.instance_id)
        if placed and group.scope == "host":
            confined.append(frozenset(m.host for m in placed))
        elif placed:
            confined.append(frozenset().union(*(view.hosts_in_rack(m.rack) for m in placed)))
    if not confined:
        return None
    smallest = min(confined, key=len)
    if len(smallest) > isqrt(len(view.hosts)):
        return None
    return smallest.intersection(*confined)
