"""Schedulable hosts kept in weigher order, fleet-wide and per zone, updated one host at a time.

This is what makes a decision cost a handful of host checks instead of 10,000: the scheduler
walks hosts best-first and stops at the first that passes every filter. A claim moves only its
host's key, so keeping the order costs a few microseconds per claim.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .persistent import SortedKeys
from .weighers import Weigher, rank_key

Entry = tuple[str, float]
"""A ranked host's (zone, score); hosts that are down or disabled have no entry."""

# Fleet-wide orders always exist, even empty; per-zone orders appear with their first host.
_FLEET_ORDERS = tuple((weigher, None) for weigher in Weigher)


class Ranking:
    """Immutable: ``moved`` returns a new ranking. One order per (weigher, zone or None)."""

    __slots__ = ("_orders",)

    def __init__(self, entries: Iterable[tuple[str, Entry]] = ()) -> None:
        keys: dict[tuple[Weigher, str | None], list[tuple[float, str]]] = {
            order: [] for order in _FLEET_ORDERS
        }
        for name, (zone, host_score) in entries:
            for weigher in Weigher:
                key = rank_key(weigher, host_score, name)
                keys[weigher, None].append(key)
                keys.setdefault((weigher, zone), []).append(key)
        self._orders = {order: SortedKeys(k) for order, k in keys.items()}

    def moved(self, name: str, old: Entry | None, new: Entry | None) -> Ranking:
        """The ranking after ``name`` went from ``old`` to ``new`` (None: not ranked)."""
        if old == new:
            return self
        orders = dict(self._orders)
        for weigher in Weigher:
            for entry, update in ((old, SortedKeys.remove), (new, SortedKeys.add)):
                if entry is None:
                    continue
                zone, host_score = entry
                key = rank_key(weigher, host_score, name)
                for order in ((weigher, None), (weigher, zone)):
                    orders[order] = update(orders.get(order, SortedKeys()), key)
        ranking: Ranking = Ranking.__new__(Ranking)
        ranking._orders = orders
        return ranking

    def walk(self, weigher: Weigher, zone: str | None, at_least: float) -> Iterator[str]:
        """Host names best-first under ``weigher`` (within ``zone`` if given), stopping at the
        first whose score is below ``at_least``: no host past that line could fit."""
        order = self._orders.get((weigher, zone))
        if order is None:
            return
        if weigher is Weigher.PACK:
            # Ascending scores: skip straight to the smallest that could fit.
            for _, name in order.iter_from((at_least, "")):
                yield name
            return
        for negated, name in order.iter_from(None):
            if -negated < at_least:
                return
            yield name
