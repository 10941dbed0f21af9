"""Billing across a cold resize: the old flavor's rate until the guest stops for it, the new
one's from the moment it runs resized; no gap beyond the stop, no double charge."""

from __future__ import annotations

from tests.unit.billing.billing_support import SMALL, TENANT, at, event, folded, prices

from virga_billing.core.snapshot import restore, snapshot
from virga_events import Envelope
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceResized,
    InstanceResizeStopped,
    InstanceStarted,
)
from virga_rating.rating import rate

LARGE = Flavor(name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80)


def stopped(day: int, hour: int, minute: int = 0, *, was_running: bool = True) -> Envelope:
    payload = InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=was_running)
    return event(payload, "i-1", at(day, hour, minute))


def resized(day: int, hour: int, minute: int = 0, *, running: bool = True) -> Envelope:
    payload = InstanceResized(
        flow_id="r-1", step="redefine", host="h1", flavor=LARGE, running=running
    )
    return event(payload, "i-1", at(day, hour, minute))


def test_the_new_flavors_rate_applies_from_the_moment_it_runs_resized() -> None:
    state = folded(
        [
            prices(at(1, month=2), "0.10"),
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9)),
            event(InstanceStarted(host="h1"), "i-1", at(10)),
            stopped(11, 0),  # 24 h of m1.small
            resized(11, 0, 30),  # off for the half hour of the resize
            event(InstanceDeleted(host="h1"), "i-1", at(12, 0, 30)),  # 24 h of m1.large
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    lines = sorted((line.kind, line.quantity, line.unit_price) for line in invoice.lines)
    assert lines == [("compute", "24.000000", "0.10"), ("compute", "24.000000", "1.00")]
    # A snapshot keeps which flavor each interval ran as.
    again = restore(snapshot(state))
    assert rate(TENANT, again.usage(TENANT), again.prices, "2026-03").lines == invoice.lines


def test_a_stopped_instance_resized_is_charged_nothing_until_it_starts() -> None:
    state = folded(
        [
            prices(at(1, month=2), "0.10"),
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9)),
            stopped(10, 0, was_running=False),
            resized(10, 1, running=False),
            event(InstanceStarted(host="h1"), "i-1", at(11)),
            event(InstanceDeleted(host="h1"), "i-1", at(12)),
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    assert [(line.quantity, line.unit_price) for line in invoice.lines] == [("24.000000", "1.00")]


def test_a_resize_that_moves_hosts_is_charged_once_with_no_gap_beyond_the_stop() -> None:
    moved = InstanceResized(flow_id="r-1", step="redefine", host="h2", flavor=LARGE, running=True)
    state = folded(
        [
            prices(at(1, month=2), "0.10"),
            event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9)),
            event(InstanceStarted(host="h1"), "i-1", at(10)),
            stopped(11, 0),  # 24 h of m1.small on h1
            event(moved, "i-1", at(11, 0, 30)),  # off for the half hour of the move
            event(InstanceDeleted(host="h2"), "i-1", at(12, 0, 30)),  # 24 h of m1.large on h2
        ]
    )
    invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
    lines = sorted((line.kind, line.quantity, line.unit_price) for line in invoice.lines)
    assert lines == [("compute", "24.000000", "0.10"), ("compute", "24.000000", "1.00")]


def test_an_instances_intervals_do_not_depend_on_when_its_request_was_folded() -> None:
    """Its request (the gateway's topic) and its agent's reports (the host's) come in no set
    order, and a rebuild reads them in another order than the live service did: the state
    must come out the same (intervals named the flavor known at their close, so the live
    service and its rebuild disagreed: CI's billing-restart and audit-billing tests)."""
    requested = event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9))
    reports = [
        event(InstanceStarted(host="h1"), "i-1", at(10)),
        event(InstanceDeleted(host="h1"), "i-1", at(11)),
    ]
    first = folded([prices(at(1, month=2), "0.10"), requested, *reports])
    last = folded([prices(at(1, month=2), "0.10"), *reports, requested])
    assert snapshot(first) == snapshot(last)
