"""Volume charges: GB-time from creation to deletion, cut by extends, price changes and months,
priced per GB-month of the calendar month it falls in."""

from __future__ import annotations

from datetime import datetime

from tests.unit.billing.billing_support import TENANT, at, event, folded

from virga_billing.core import snapshot
from virga_events import Envelope
from virga_events.catalog.billing import InvoiceLine, PricesSet
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted, VolumeExtended
from virga_rating.rating import rate_tenant


def volume_prices(effective_from: datetime, gb_month: str) -> Envelope:
    payload = PricesSet(
        currency="EUR",
        effective_from=effective_from,
        flavor_hour={},
        volume_gb_month=gb_month,
        egress_gb="0.05",
        public_ip_hour="0.005",
    )
    return event(payload, "prices", at(1, month=1), tenant=None)


def volume_line(quantity: str, price: str, amount: str, volume: str = "v-1") -> InvoiceLine:
    return InvoiceLine(
        resource_id=volume,
        kind="volume",
        quantity=quantity,
        unit="GB-month",
        unit_price=price,
        amount=amount,
    )


def test_an_extended_volume_is_billed_per_size_and_price_until_its_deletion() -> None:
    state = folded(
        [
            volume_prices(at(1, month=1), "0.04"),
            volume_prices(at(16), "0.06"),
            event(VolumeCreated(name="data", size_gb=100), "v-1", at(10)),
            event(VolumeExtended(size_gb=200), "v-1", at(20)),
            event(VolumeDeleted(), "v-1", at(25)),
            event(VolumeExtended(size_gb=300), "v-1", at(26)),  # after deletion: nothing
        ]
    )
    invoice = rate_tenant(state, TENANT, "2026-03")
    # March has 31 days. 100 GB x 6 days at 0.04 = 600/31 GB-month = 0.774...
    # 100 GB x 4 days + 200 GB x 5 days at 0.06 = 1400/31 GB-month = 2.709...
    assert sorted(invoice.lines, key=lambda x: x.unit_price) == [
        volume_line("19.354839", "0.04", "0.77"),
        volume_line("45.161290", "0.06", "2.71"),
    ]
    assert invoice.total == "3.48"
    assert rate_tenant(state, TENANT, "2026-04").lines == ()


def test_a_volume_kept_across_months_is_a_share_of_each_calendar_month() -> None:
    state = folded(
        [
            volume_prices(at(1, month=1), "0.10"),
            # 10 GB from 15 February 00:00: 14 of February's 28 days, then all of March.
            event(
                VolumeCreated(name="boot", size_gb=10, instance_id="i-1"), "v-1", at(15, month=2)
            ),
        ]
    )
    assert rate_tenant(state, TENANT, "2026-02").lines == (volume_line("5.000000", "0.10", "0.50"),)
    assert rate_tenant(state, TENANT, "2026-03").lines == (
        volume_line("10.000000", "0.10", "1.00"),
    )


def test_volumes_survive_a_snapshot_and_count_as_the_tenants_usage() -> None:
    state = folded(
        [
            volume_prices(at(1, month=1), "0.10"),
            event(VolumeCreated(name="data", size_gb=10), "v-1", at(3)),
            event(VolumeExtended(size_gb=20), "v-1", at(4)),
        ]
    )
    assert state.tenants() == {TENANT}
    assert state.first_use(TENANT) == at(3)
    restored = snapshot.restore(snapshot.snapshot(state))
    assert restored == state
    assert rate_tenant(restored, TENANT, "2026-03") == rate_tenant(state, TENANT, "2026-03")
