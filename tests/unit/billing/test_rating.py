"""Rating against invoices computed by hand: price changes, stop/start, deletion, egress
counters that reset, and the rounding rules of the README."""

from __future__ import annotations

import pytest
from tests.unit.billing.billing_support import (
    SMALL,
    TENANT,
    at,
    event,
    folded,
    prices,
    sampled,
)

from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.billing import InvoiceLine
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_rating.rating import bounds, next_period, rate


def line(kind: str, quantity: str, unit: str, price: str, amount: str) -> InvoiceLine:
    return InvoiceLine(
        resource_id="i-1", kind=kind, quantity=quantity, unit=unit, unit_price=price, amount=amount
    )


def test_a_month_with_a_price_change_stop_start_deletion_and_counter_resets() -> None:
    state = folded(
        [
            prices(at(1, month=2), "0.10", egress_gb="0.05"),
            prices(at(16), "0.12", egress_gb="0.08"),  # from mid-March on
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9)),
            event(InstanceStarted(host="h1"), "i-1", at(10)),
            sampled("i-1", at(10, 1), 1_000_000_000),
            sampled("i-1", at(11), 3_000_000_000),
            event(InstanceStopped(host="h1"), "i-1", at(12)),  # 48 h at 0.10
            sampled("i-1", at(12, 0, 1), 3_000_000_000),  # stopped: nothing new
            event(InstanceStarted(host="h1"), "i-1", at(14, 12)),
            sampled("i-1", at(15), 500_000_000),  # counters restart with the domain
            sampled("i-1", at(17), 200_000_000),  # lower than before: reset, all of it is new
            event(InstanceRebooted(host="h1"), "i-1", at(18)),  # still the same interval
            sampled("i-1", at(18, 1), 1_450_000_000),
            event(InstanceDeleted(host="h1"), "i-1", at(20)),  # 36 h at 0.10, 96 h at 0.12
            event(InstanceStarted(host="h1"), "i-1", at(21)),  # after deletion: never billed
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert invoice.currency == "EUR"
    assert sorted(invoice.lines, key=lambda x: (x.kind, x.unit_price)) == [
        line("compute", "84.000000", "hour", "0.10", "8.40"),
        line("compute", "96.000000", "hour", "0.12", "11.52"),
        # 3.5 GB x 0.05 = 0.175: a tie, rounded to the even 0.18
        line("egress", "3.500000000", "GB", "0.05", "0.18"),
        # (0.2 + 1.25) GB x 0.08 = 0.116
        line("egress", "1.450000000", "GB", "0.08", "0.12"),
    ]
    assert invoice.total == "20.22"
    assert rate(TENANT, state.usage(TENANT), state.prices, "2026-04").lines == ()


def test_a_running_instance_is_billed_to_the_end_of_the_month_and_on_into_the_next() -> None:
    state = folded(
        [
            prices(at(1, month=1), "0.10"),
            event(
                InstanceScheduled(
                    host="h1", rack="r", zone="z", attempt=1, name="vm", flavor=SMALL
                ),
                "i-1",
                at(1),
            ),
            event(InstanceStarted(host="h1"), "i-1", at(31, 12)),
        ]
    )
    march = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert march.lines == (line("compute", "12.000000", "hour", "0.10", "1.20"),)
    april = rate(TENANT, state.usage(TENANT), state.prices, "2026-04")
    assert april.total == "72.00"  # 30 days x 24 h x 0.10


def test_amounts_are_rounded_once_per_line_half_to_even() -> None:
    # Three separate hours at 0.005: rounded per interval they would be 0.00 each; the line
    # (0.015) is rounded once, a tie, to the even 0.02.
    starts_stops = []
    for day in (2, 3, 4):
        starts_stops += [
            event(InstanceStarted(host="h1"), "i-1", at(day, 10)),
            event(InstanceStopped(host="h1"), "i-1", at(day, 11)),
        ]
    # 2.5 h at 0.01 = 0.025: a tie, rounded down to the even 0.02 (half-up would say 0.03)
    other = [
        event(InstanceRequested(name="b", flavor=SMALL), "i-2", at(1)),
        event(InstanceStarted(host="h1"), "i-2", at(5, 10)),
        event(InstanceStopped(host="h1"), "i-2", at(5, 12, 30)),
    ]
    state = folded(
        [
            prices(at(1, month=1), "0.005"),
            prices(at(5), "0.01"),
            event(InstanceRequested(name="a", flavor=SMALL), "i-1", at(1)),
            *starts_stops,
            *other,
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    amounts = {(x.resource_id, x.quantity): x.amount for x in invoice.lines}
    assert amounts == {("i-1", "3.000000"): "0.02", ("i-2", "2.500000"): "0.02"}
    assert invoice.total == "0.04"


def test_seconds_are_billed_exactly_and_minor_units_follow_the_currency() -> None:
    state = folded(
        [
            prices(at(1, month=1), "100", currency="JPY"),
            event(InstanceRequested(name="a", flavor=SMALL), "i-1", at(1)),
            event(InstanceStarted(host="h1"), "i-1", at(2, 10)),
            event(InstanceStopped(host="h1"), "i-1", at(2, 10, 1)),  # 60 s: 1.666... yen
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert invoice.lines == (line("compute", "0.016667", "hour", "100", "2"),)
    assert (invoice.currency, invoice.total) == ("JPY", "2")


def test_usage_before_any_price_or_of_an_unpriced_flavor_is_not_charged() -> None:
    large = SMALL.__class__(name="m9.unpriced", vcpus=9, ram_mb=1, disk_gb=1)
    state = folded(
        [
            event(InstanceRequested(name="a", flavor=SMALL), "i-1", at(1)),
            event(InstanceRequested(name="b", flavor=large), "i-2", at(1)),
            event(InstanceStarted(host="h1"), "i-1", at(2)),
            event(InstanceStarted(host="h1"), "i-2", at(2)),
            prices(at(3), "0.10"),
            event(InstanceStopped(host="h1"), "i-1", at(4)),
            event(InstanceStopped(host="h1"), "i-2", at(4)),
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert invoice.lines == (line("compute", "24.000000", "hour", "0.10", "2.40"),)


def test_periods_are_utc_months() -> None:
    assert bounds("2026-12") == (at(1, month=12), at(1, month=12).replace(year=2027, month=1))
    assert next_period("2026-12") == "2027-01"
    with pytest.raises(ValueError, match="YYYY-MM"):
        bounds("2026-13")


def test_samples_are_kept_per_hour_and_rated_as_each_one_would_be() -> None:
    minutes = [
        sampled("i-1", at(10, 0, 1), 100),
        sampled("i-1", at(10, 0, 59), 250),  # same hour: one record
        sampled("i-1", at(10, 1, 0), 400),  # the next hour opens another
        sampled("i-1", at(10, 1, 30), 50),  # a reset within it: all 50 new
    ]
    state = folded([prices(at(1, month=2), "0.10"), *minutes])
    assert [(s.at, s.bytes) for s in state.instances["i-1"].egress] == [
        (at(10, 0, 59), 250),
        (at(10, 1, 30), 200),
    ]
