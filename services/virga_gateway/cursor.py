"""Opaque pagination cursors: the (created_at, id) of the last item of a page; and a page of
items walked from the sorted indexes the projection keeps."""

from __future__ import annotations

import base64
import binascii
import bisect
import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeVar

OrderKey = tuple[datetime, str]
"""(created_at, id): the order resources are listed and paginated in."""


class BadCursor(ValueError):
    """The cursor was not made by this API (or was altered)."""


def encode_cursor(key: OrderKey) -> str:
    created_at, instance_id = key
    raw = f"{created_at.isoformat()}|{instance_id}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> OrderKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, separator, instance_id = raw.partition("|")
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("not a cursor this API returned") from None
    if not separator or not instance_id or created_at.tzinfo is None:
        raise BadCursor("not a cursor this API returned")
    return created_at, instance_id


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""The time of keys that sort before every resource's (a tenant's implicit default group)."""

T = TypeVar("T")


def remove_key(order: list[OrderKey], key: OrderKey) -> None:
    """Take `key` out of the sorted `order`, if it is there."""
    at = bisect.bisect_left(order, key)
    if at < len(order) and order[at] == key:
        del order[at]


def _after(order: Sequence[OrderKey], after: OrderKey | None) -> Iterator[OrderKey]:
    start = 0 if after is None else bisect.bisect_right(order, after)
    return (order[i] for i in range(start, len(order)))


def take_page(
    orders: Iterable[Sequence[OrderKey]],
    after: OrderKey | None,
    limit: int,
    shown: Callable[[OrderKey], T | None],
) -> tuple[list[T], str | None]:
    """One page of the items the sorted, disjoint `orders` list, after the cursor's key.

    `shown` gives the item a key stands for, or None to skip it (deleted, filtered out): a
    page walks only the keys from the cursor on, never a whole table. The cursor of the next
    page is None when nothing is left to show.
    """
    page: list[T] = []
    last: OrderKey | None = None
    for key in heapq.merge(*(_after(order, after) for order in orders)):
        item = shown(key)
        if item is None:
            continue
        if len(page) == limit:
            assert last is not None
            return page, encode_cursor(last)
        page.append(item)
        last = key
    return page, None


def owned(
    orders: Mapping[str, Sequence[OrderKey]], tenant_id: str | None
) -> list[Sequence[OrderKey]]:
    """The per-tenant indexes a listing walks: one tenant's, or every tenant's (None)."""
    if tenant_id is None:
        return list(orders.values())
    return [orders.get(tenant_id, ())]
