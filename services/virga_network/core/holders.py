"""Who holds which id, MAC or address: a list of holders per key, free once it is empty.

A rebuild folds its topics' partitions in no set order, so a freed key may be folded after
the allocation that reused it; a list of holders gives the same state whatever the order.
"""

from __future__ import annotations

from typing import TypeVar

TOMBSTONE_LIMIT = 10_000
"""Bound of each deleted-ids set, oldest dropped first (they only outlive late duplicates)."""

K = TypeVar("K", int, str)


def claim(table: dict[K, list[str]], key: K, holder: str) -> None:
    holders = table.setdefault(key, [])
    if holder not in holders:
        holders.append(holder)


def release(table: dict[K, list[str]], key: K, holder: str) -> None:
    holders = table.get(key)
    if holders is not None and holder in holders:
        holders.remove(holder)
        if not holders:
            del table[key]


def bounded_add(table: dict[str, None], key: str) -> None:
    table.pop(key, None)
    table[key] = None
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]
