"""Opaque pagination cursors: the (created_at, id) of the last instance of a page."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

OrderKey = tuple[datetime, str]
"""(created_at, id): the order instances are listed and paginated in."""


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
