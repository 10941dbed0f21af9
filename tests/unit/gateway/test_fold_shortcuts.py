"""The gateway's per-event bookkeeping takes shortcuts (a rebuild runs it for every event of
the log): each must give what the plain definition gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from virga_gateway.billing.retention import cutoff
from virga_gateway.quotas.model import TABLES, USAGE_OF
from virga_rating.rating import bounds, period_of


def test_the_usage_cutoff_is_the_start_of_the_month_bounds_gives() -> None:
    zones = (UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30)))
    keeps = (timedelta(0), timedelta(hours=1), timedelta(days=40))
    start = datetime(2026, 12, 31, 20, tzinfo=UTC)
    for hours in range(0, 24 * 70, 7):
        for zone in zones:
            clock = (start + timedelta(hours=hours)).astimezone(zone)
            for keep in keeps:
                assert cutoff(clock, keep) == bounds(period_of(clock - keep))[0]
                assert cutoff(clock, keep).tzinfo is UTC


def test_every_quota_table_has_its_usage_function_in_order() -> None:
    assert tuple(USAGE_OF) == TABLES
