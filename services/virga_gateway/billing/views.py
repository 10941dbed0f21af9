"""Prices, usage and invoices as the API shows them."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_events.catalog.billing import InvoiceIssued, InvoiceLine, PricesSet


class PricesView(msgspec.Struct, kw_only=True):
    currency: str
    effective_from: datetime
    flavor_hour: dict[str, str]
    volume_gb_month: str
    egress_gb: str
    public_ip_hour: str


class PriceCatalogue(msgspec.Struct, kw_only=True):
    in_effect: PricesView | None
    """The catalogue applying now; none before the first one takes effect."""
    pending: list[PricesView]
    """Catalogues set to take effect later, soonest first (one set with the default
    `effective_from`, the next whole hour, shows here until then)."""
    history: list[PricesView]
    """Every catalogue ever set, by effective_from (future ones included)."""


class UsageView(msgspec.Struct, kw_only=True):
    tenant_id: str
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    """`to` as asked, or now if that was later: usage so far."""
    currency: str | None
    """The currency of the catalogue in effect at `to`; null while no prices apply (no
    catalogue in effect yet): the lines then charge nothing."""
    lines: list[InvoiceLine]
    """One line per resource, kind of charge and unit price, rounded as on an invoice."""
    total: str


class InvoiceView(msgspec.Struct, kw_only=True):
    tenant_id: str
    period: str
    currency: str
    lines: list[InvoiceLine]
    total: str


class InvoiceList(msgspec.Struct, kw_only=True):
    items: list[InvoiceView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def prices_view(prices: PricesSet) -> PricesView:
    return PricesView(
        currency=prices.currency,
        effective_from=prices.effective_from,
        flavor_hour=dict(prices.flavor_hour),
        volume_gb_month=prices.volume_gb_month,
        egress_gb=prices.egress_gb,
        public_ip_hour=prices.public_ip_hour,
    )


def invoice_view(invoice: InvoiceIssued) -> InvoiceView:
    return InvoiceView(
        tenant_id=invoice.tenant,
        period=invoice.period,
        currency=invoice.currency,
        lines=list(invoice.lines),
        total=invoice.total,
    )
