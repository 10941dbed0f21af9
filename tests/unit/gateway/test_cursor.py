"""Pagination cursors: opaque, round-tripping, and refused when not ours."""

from __future__ import annotations

import base64

import pytest
from tests.unit.gateway.events import at

from virga_gateway.cursor import BadCursor, decode_cursor, encode_cursor


def test_a_cursor_round_trips_to_the_same_key() -> None:
    key = (at(1.5), "0b9c4e6e-7f0a-4d1c-9c1e-2d9f1f0a7e11")
    cursor = encode_cursor(key)
    assert decode_cursor(cursor) == key
    assert "=" not in cursor
    assert "/" not in cursor
    assert "+" not in cursor


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not a cursor!",
        "%%%",
        base64.urlsafe_b64encode(b"no-separator").decode(),
        base64.urlsafe_b64encode(b"yesterday|id").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00|naive-time").decode(),
        base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_a_cursor_we_did_not_make_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)
