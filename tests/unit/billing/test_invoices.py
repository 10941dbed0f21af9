"""The tick: each closed month invoiced once, after its grace; late facts become adjustments;
snapshots restore the same state."""

from __future__ import annotations

import orjson
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

from virga_billing.config import BillingConfig
from virga_billing.core import snapshot
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.billing import InvoiceLine
from virga_events.catalog.compute import InstanceStarted, InstanceStopped
from virga_rating.rating import rate
from virga_rating.state import BillingState

CONFIG = BillingConfig(grace_seconds=3600)


def march() -> BillingState:
    """i-1 ran 10 h in March at 0.10 and sent 1 GB at 0.05; i-2 (another tenant) ran 1 h."""
    return folded(
        [
            prices(at(1, month=1), "0.10"),
            event(InstanceRequested(name="a", flavor=SMALL), "i-1", at(1)),
            event(InstanceStarted(host="h1"), "i-1", at(2)),
            sampled("i-1", at(2, 5), 1_000_000_000),
            event(InstanceStopped(host="h1"), "i-1", at(2, 10)),
            event(InstanceRequested(name="b", flavor=SMALL), "i-2", at(1), tenant="t-2"),
            event(InstanceStarted(host="h1"), "i-2", at(3), tenant="t-2"),
            event(InstanceStopped(host="h1"), "i-2", at(3, 1), tenant="t-2"),
        ]
    )


def test_a_month_is_invoiced_once_after_its_grace_and_never_again() -> None:
    state = march()
    assert run_tick(CONFIG, state, at(31, 23)) == []  # March is not over
    assert run_tick(CONFIG, state, at(1, 0, 59, month=4)) == []  # within the grace
    issued = run_tick(CONFIG, state, at(1, 1, month=4))
    assert [(i.tenant, i.period, i.total) for i in issued] == [
        ("t-1", "2026-03", "1.05"),
        ("t-2", "2026-03", "0.10"),
    ]
    assert issued[0] == rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert run_tick(CONFIG, state, at(1, 2, month=4)) == []
    assert run_tick(CONFIG, state, at(1, 2, month=6)) == []  # nothing used since: no invoices


def test_a_late_event_for_a_closed_month_is_an_adjustment_on_the_next_invoice() -> None:
    state = march()
    [march_invoice, _] = run_tick(CONFIG, state, at(1, 1, month=4))
    # Arriving in April: traffic sent in March (an agent that was cut off), and April's use.
    folded(
        [
            sampled("i-1", at(31, 23), 3_000_000_000),  # 2 GB more, in March
            event(InstanceStarted(host="h1"), "i-1", at(10, month=4)),
            event(InstanceStopped(host="h1"), "i-1", at(10, 2, month=4)),
        ],
        state,
    )
    assert state.invoices[TENANT]["2026-03"] == march_invoice  # never changes
    [april] = run_tick(CONFIG, state, at(1, 1, month=5))
    assert april.period == "2026-04"
    assert april.lines == (
        InvoiceLine(
            resource_id="i-1",
            kind="compute",
            quantity="2.000000",
            unit="hour",
            unit_price="0.10",
            amount="0.20",
        ),
        InvoiceLine(
            resource_id="i-1",
            kind="adjustment",
            quantity="2.000000000",
            unit="GB",
            unit_price="0.05",
            amount="0.10",
            adjusts="2026-03",
            charge="egress",
        ),
    )
    assert april.total == "0.30"
    # Used again in May: the May invoice does not repeat the adjustment.
    folded(
        [
            event(InstanceStarted(host="h1"), "i-1", at(3, month=5)),
            event(InstanceStopped(host="h1"), "i-1", at(3, 1, month=5)),
        ],
        state,
    )
    [may] = run_tick(CONFIG, state, at(1, 1, month=6))
    assert [(x.kind, x.amount) for x in may.lines] == [("compute", "0.10")]


def test_snapshot_restores_an_equal_state() -> None:
    state = march()
    run_tick(CONFIG, state, at(1, 1, month=4))
    folded([event(InstanceStarted(host="h1"), "i-1", at(5, month=4))], state)
    data = orjson.loads(orjson.dumps(snapshot.snapshot(state)))  # plain JSON on the wire
    restored = snapshot.restore(data)
    assert restored == state
    assert snapshot.snapshot(restored) == snapshot.snapshot(state)
    assert run_tick(CONFIG, restored, at(1, 1, month=5)) == run_tick(
        CONFIG, state, at(1, 1, month=5)
    )
