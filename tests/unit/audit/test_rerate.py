"""`rerate`'s comparison: what billing issued against the log re-rated by billing's own code."""

from __future__ import annotations

import dataclasses

from tests.unit.billing.billing_support import (
    SMALL,
    TENANT,
    at,
    event,
    folded,
    prices,
    run_tick,
    sampled,
)

from virga_audit.rerate import compare
from virga_billing.config import BillingConfig
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import InstanceRestarted, InstanceStarted, InstanceStopped
from virga_rating.state import BillingState

CONFIG = BillingConfig(grace_seconds=3600)


def invoiced_march() -> BillingState:
    state = folded(
        [
            prices(at(1, month=2), "0.10"),
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(2)),
            event(InstanceStarted(host="h1"), "i-1", at(2)),
            sampled("i-1", at(3), 2_000_000_000),
            event(InstanceStopped(host="h1"), "i-1", at(4)),
        ]
    )
    [issued] = run_tick(CONFIG, state, at(1, 2, month=4))
    assert issued.total == "4.90"  # 48 h x 0.10 + 2 GB x 0.05
    return state


def test_what_billing_issued_rerates_to_itself() -> None:
    state = invoiced_march()
    assert compare(state, "2026-03") == []


def test_a_late_event_is_a_difference_until_an_adjustment_bills_it() -> None:
    state = folded([sampled("i-1", at(31, 23), 3_000_000_000)], invoiced_march())
    [difference] = compare(state, "2026-03")
    assert (difference.tenant, difference.resource_id, difference.charge) == (
        TENANT,
        "i-1",
        "egress",
    )
    assert "1.000000000 GB, 0.05 EUR" in difference.detail
    # April's invoice carries the adjustment: March is then billed as it re-rates.
    run_tick(CONFIG, state, at(1, 2, month=5))
    assert compare(state, "2026-03") == []


def test_a_tampered_invoice_is_a_difference() -> None:
    state = invoiced_march()
    issued = state.invoices[TENANT]["2026-03"]
    line = dataclasses.replace(issued.lines[0], amount="0.80")
    state.invoices[TENANT]["2026-03"] = dataclasses.replace(issued, lines=(line, *issued.lines[1:]))
    found = [str(d) for d in compare(state, "2026-03")]
    assert found == [
        "t-1 2026-03 - total: issued 4.90, lines sum 0.90",
        "t-1 2026-03 i-1 compute: re-rated minus billed at 0.10/hour: 0.000000 hour, 4.00 EUR",
    ]


def test_usage_never_invoiced_is_a_difference() -> None:
    state = invoiced_march()
    del state.invoices[TENANT]
    assert [str(d) for d in compare(state, "2026-03")] == [
        "t-1 2026-03 - invoice: none issued; re-rated 4.90"
    ]


def test_a_guest_that_crashed_and_was_restarted_is_billed_only_while_it_ran() -> None:
    # Up 2nd 00:00, crashed (seen by its agent) 3rd 00:00, restarted by its policy 3rd 12:00,
    # destroyed outside Virga 4th 00:00: 24 h + 12 h, the gap unbilled.
    state = folded(
        [
            prices(at(1, month=2), "0.10"),
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(2)),
            event(InstanceStarted(host="h1"), "i-1", at(2)),
            event(InstanceStopped(host="h1", cause="crashed"), "i-1", at(3)),
            event(
                InstanceRestarted(host="h1", cause="crashed", policy="on-crash"), "i-1", at(3, 12)
            ),
            event(InstanceStopped(host="h1", cause="destroyed"), "i-1", at(4)),
        ]
    )
    [issued] = run_tick(CONFIG, state, at(1, 2, month=4))
    assert issued.total == "3.60"  # 36 h x 0.10
    assert compare(state, "2026-03") == []
