"""Prices, usage and invoices as the API shows them: the request body, views, and the pure
decisions and queries behind `routes/billing.py`.

Figures come from billing's own pure core (`virga_rating`), folded into the projection by
`fold_billing`: the gateway never rates on its own, so `GET /v1/usage` and the invoices the
billing service issues are computed by the same code from the same facts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from virga_events.catalog.billing import InvoiceIssued, InvoiceLine, PricesSet
from virga_gateway import validation as v
from virga_gateway.auth import Principal
from virga_gateway.commands import Outcome
from virga_gateway.model import GatewayState
from virga_gateway.problems import FieldError, invalid, invalid_fields, not_found
from virga_rating.currencies import ISO_4217
from virga_rating.rating import bounds, rate_window, total
from virga_runtime.service import Emit

PRICES_AGGREGATE = "prices"
"""Every PricesSet has this aggregate id: one catalogue history, in one partition."""

_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?$")
_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")

Price = Annotated[
    str,
    msgspec.Meta(
        max_length=32,
        description='A non-negative decimal as a string, e.g. "0.0125" (up to 12 decimals).',
        examples=["0.04"],
    ),
]


class SetPrices(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole catalogue, replacing the one in effect from `effective_from` on."""

    currency: Annotated[str, msgspec.Meta(description="ISO 4217 code, e.g. EUR.")]
    effective_from: Annotated[
        datetime,
        msgspec.Meta(tz=True, description="RFC 3339 instant the prices apply from: a whole hour."),
    ]
    flavor_hour: Annotated[dict[str, Price], msgspec.Meta(max_length=1000)]
    """Price of an hour of a running instance, per flavor name (known flavors only)."""
    volume_gb_month: Price
    egress_gb: Price
    """Per 10^9 bytes sent out by instances."""
    public_ip_hour: Price


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
    history: list[PricesView]
    """Every catalogue ever set, by effective_from (future ones included)."""


class UsageView(msgspec.Struct, kw_only=True):
    tenant_id: str
    start: datetime = msgspec.field(name="from")
    end: datetime = msgspec.field(name="to")
    """`to` as asked, or now if that was later: usage so far."""
    currency: str
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


def validate_prices(value: object) -> SetPrices:
    """A JSON value as a `SetPrices` body; 422 naming the field whose type is wrong."""
    return v.validate(value, SetPrices)


def set_prices(state: GatewayState, body: SetPrices) -> Outcome:
    """A `PricesSet`; 422 naming each malformed price, an unknown currency or flavor."""
    errors: list[FieldError] = []
    if body.currency not in ISO_4217:
        errors.append(FieldError("currency", "must be an ISO 4217 currency code such as EUR"))
    prices = {
        "volume_gb_month": body.volume_gb_month,
        "egress_gb": body.egress_gb,
        "public_ip_hour": body.public_ip_hour,
        **{f"flavor_hour.{name}": price for name, price in body.flavor_hour.items()},
    }
    for field, price in prices.items():
        if not _DECIMAL.match(price):
            errors.append(
                FieldError(field, f'must be a non-negative decimal string, not "{price}"')
            )
    effective_from = body.effective_from.astimezone(UTC)
    if effective_from != effective_from.replace(minute=0, second=0, microsecond=0):
        # Egress is kept per hour (`virga_rating.state.EgressSample`): exact only if prices
        # change at whole hours.
        errors.append(FieldError("effective_from", "must be a whole hour (UTC)"))
    for name in body.flavor_hour:
        if name not in state.flavors:
            errors.append(FieldError(f"flavor_hour.{name}", f"no flavor named {name}"))
    if errors:
        raise invalid_fields(errors)
    event = PricesSet(
        currency=body.currency,
        effective_from=effective_from,
        # Canonical decimals: "0.10" and "0.1" are one price, and lines split by price.
        flavor_hour={name: _canonical(p) for name, p in sorted(body.flavor_hour.items())},
        volume_gb_month=_canonical(body.volume_gb_month),
        egress_gb=_canonical(body.egress_gb),
        public_ip_hour=_canonical(body.public_ip_hour),
    )
    return Outcome(200, (Emit(event, PRICES_AGGREGATE, None),), lambda s: prices_view(event))


def _canonical(price: str) -> str:
    return format(Decimal(price), "f")


def prices_view(prices: PricesSet) -> PricesView:
    return PricesView(
        currency=prices.currency,
        effective_from=prices.effective_from,
        flavor_hour=dict(prices.flavor_hour),
        volume_gb_month=prices.volume_gb_month,
        egress_gb=prices.egress_gb,
        public_ip_hour=prices.public_ip_hour,
    )


def price_catalogue(state: GatewayState, now: datetime) -> PriceCatalogue:
    history = state.billing.prices
    in_effect = [p for p in history if p.effective_from <= now]
    return PriceCatalogue(
        in_effect=prices_view(in_effect[-1]) if in_effect else None,
        history=[prices_view(p) for p in history],
    )


def billed_tenant(state: GatewayState, principal: Principal, requested: str | None) -> str:
    """Whose figures are asked for: the caller's own, or the tenant an admin names."""
    if principal.is_admin:
        if requested is None:
            raise invalid(400, "tenant_id", "is required when an admin asks")
        if requested not in state.tenants:
            raise not_found("tenant", requested)
        return requested
    assert principal.tenant_id is not None
    if requested not in (None, principal.tenant_id):
        raise not_found("tenant", requested)  # other tenants do not exist for a tenant
    return principal.tenant_id


def usage(state: GatewayState, tenant: str, start: datetime, end: datetime) -> UsageView:
    """The tenant's charges in [start, end), rated as an invoice would rate them."""
    v.check(start < end, "to", "must be later than from")
    lines, currency = rate_window(state.billing, tenant, start, end)
    return UsageView(
        tenant_id=tenant,
        start=start,
        end=end,
        currency=currency,
        lines=lines,
        total=total(lines, currency),
    )


def invoice_view(invoice: InvoiceIssued) -> InvoiceView:
    return InvoiceView(
        tenant_id=invoice.tenant,
        period=invoice.period,
        currency=invoice.currency,
        lines=list(invoice.lines),
        total=invoice.total,
    )


def invoices(state: GatewayState, tenant: str) -> InvoiceList:
    issued = state.billing.issued(tenant)
    return InvoiceList(items=[invoice_view(issued[p]) for p in sorted(issued)])


def invoice(state: GatewayState, tenant: str, period: str) -> InvoiceView:
    if not _PERIOD.match(period):
        raise invalid(400, "period", "must be a month as YYYY-MM, e.g. 2026-11")
    bounds(period)
    found = state.billing.issued(tenant).get(period)
    if found is None:
        raise not_found("invoice", f"{period} of tenant {tenant}")
    return invoice_view(found)
