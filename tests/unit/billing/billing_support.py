"""Builders for billing's unit tests: a month of lifecycle events, prices, and a runtime
stand-in that folds each tick's invoices back into the state as ``ServiceRunner`` does."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from virga_billing.config import BillingConfig
from virga_billing.core.decide import tick
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.billing import InvoiceIssued, PricesSet
from virga_events.catalog.compute import UsageSampled
from virga_rating.fold import evolve
from virga_rating.state import BillingState
from virga_runtime import Emit

TENANT = "t-1"
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=10)


def at(day: int, hour: int = 0, minute: int = 0, *, month: int = 3) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def event(
    payload: Event, aggregate_id: str, when: datetime, tenant: str | None = TENANT
) -> Envelope:
    return new_event(
        payload, aggregate_id=aggregate_id, tenant_id=tenant, producer="test", occurred_at=when
    )


def prices(
    effective_from: datetime,
    small_hour: str,
    egress_gb: str = "0.05",
    currency: str = "EUR",
) -> Envelope:
    payload = PricesSet(
        currency=currency,
        effective_from=effective_from,
        flavor_hour={SMALL.name: small_hour, "m1.large": "1.00"},
        volume_gb_month="0.04",
        egress_gb=egress_gb,
        public_ip_hour="0.005",
    )
    return event(payload, "prices", at(1, month=1), tenant=None)


def sampled(instance_id: str, when: datetime, tx_bytes: int) -> Envelope:
    payload = UsageSampled(
        host="h1",
        period_seconds=60,
        cpu_time_ns=0,
        memory_kb=0,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=tx_bytes,
    )
    return event(payload, instance_id, when)


def folded(events: Iterable[Envelope], state: BillingState | None = None) -> BillingState:
    state = BillingState() if state is None else state
    for envelope in events:
        state = evolve(state, envelope)
    return state


def run_tick(config: BillingConfig, state: BillingState, now: datetime) -> list[InvoiceIssued]:
    """One tick; its invoices are folded back into ``state`` and returned."""
    issued = []
    for intent in tick(config, state, now):
        assert isinstance(intent, Emit)
        assert isinstance(intent.payload, InvoiceIssued)
        evolve(state, event(intent.payload, intent.aggregate_id, now))
        issued.append(intent.payload)
    return issued
