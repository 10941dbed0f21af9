"""Public IP charges: hours from a floating IP's allocation (or a router's creation) to its
release, at `public_ip_hour`, cut by price changes and months, in event time."""

from __future__ import annotations

from datetime import datetime

from tests.unit.billing.billing_support import TENANT, at, event, folded

from virga_billing.core import snapshot
from virga_events import Envelope
from virga_events.catalog.billing import InvoiceLine, PricesSet
from virga_events.catalog.l3 import (
    FloatingIpAllocated,
    FloatingIpReleased,
    RouterCreated,
    RouterDeleted,
)
from virga_rating.rating import rate_tenant


def prices(effective_from: datetime, ip_hour: str) -> Envelope:
    payload = PricesSet(
        currency="EUR",
        effective_from=effective_from,
        flavor_hour={},
        volume_gb_month="0.04",
        egress_gb="0.05",
        public_ip_hour=ip_hour,
    )
    return event(payload, "prices", effective_from, tenant=None)


def ip_line(holder: str, hours: str, price: str, amount: str) -> InvoiceLine:
    return InvoiceLine(
        resource_id=holder,
        kind="public_ip",
        quantity=hours,
        unit="hour",
        unit_price=price,
        amount=amount,
    )


FIP = FloatingIpAllocated(external_network_id="ext", ip="203.0.113.10")
ROUTER = RouterCreated(name="r", external_network_id="ext", external_ip="203.0.113.11")


def test_floating_ips_and_routers_are_billed_from_allocation_to_release() -> None:
    state = folded(
        [
            prices(at(1, month=1), "0.005"),
            prices(at(11), "0.010"),
            event(FIP, "fip-1", at(10)),  # 10 March 00:00
            event(FloatingIpReleased(external_network_id="ext", ip=FIP.ip), "fip-1", at(12, 6)),
            event(FIP, "fip-1", at(13)),  # a late duplicate after release: nothing
            event(ROUTER, "r-1", at(31, 12)),  # held on into April
        ]
    )
    invoice = rate_tenant(state, TENANT, "2026-03")
    assert sorted(invoice.lines, key=lambda x: (x.resource_id, x.unit_price)) == [
        ip_line("fip-1", "24.000000", "0.005", "0.12"),
        ip_line("fip-1", "30.000000", "0.010", "0.30"),
        ip_line("r-1", "12.000000", "0.010", "0.12"),
    ]
    assert invoice.total == "0.54"
    april = rate_tenant(state, TENANT, "2026-04")
    assert april.lines == (ip_line("r-1", "720.000000", "0.010", "7.20"),)
    deleted = folded(
        [event(RouterDeleted(external_network_id="ext"), "r-1", at(2, month=4))], state
    )
    assert rate_tenant(deleted, TENANT, "2026-04").lines == (
        ip_line("r-1", "24.000000", "0.010", "0.24"),
    )


def test_public_ips_survive_a_snapshot_and_are_the_tenants_usage() -> None:
    state = folded([prices(at(1, month=1), "0.005"), event(FIP, "fip-1", at(3))])
    assert state.tenants() == {TENANT}
    assert state.first_use(TENANT) == at(3)
    restored = snapshot.restore(snapshot.snapshot(state))
    assert restored == state
    assert rate_tenant(restored, TENANT, "2026-03") == rate_tenant(state, TENANT, "2026-03")
