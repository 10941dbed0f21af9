"""Reads of prices, usage and invoices: whose figures a principal may see, rated by billing's
own pure core (`virga_rating`) from the facts `billing.fold` keeps."""

from __future__ import annotations

import re
from datetime import datetime

from virga_gateway import validation as v
from virga_gateway.auth import Principal
from virga_gateway.billing.retention import usage_from
from virga_gateway.billing.views import (
    InvoiceList,
    InvoiceView,
    PriceCatalogue,
    UsageView,
    invoice_view,
    prices_view,
)
from virga_gateway.cursor import EPOCH, OrderKey, take_page
from virga_gateway.problems import invalid, not_found
from virga_gateway.state import GatewayState
from virga_rating.rating import bounds, rate_window, total

_PERIOD = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


def price_catalogue(state: GatewayState, now: datetime) -> PriceCatalogue:
    history = state.billing.prices
    in_effect = [p for p in history if p.effective_from <= now]
    return PriceCatalogue(
        in_effect=prices_view(in_effect[-1]) if in_effect else None,
        pending=[prices_view(p) for p in history if p.effective_from > now],
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
    whole_from = usage_from(state.usage_retention, tenant)
    if whole_from is not None and start <= whole_from:
        raise invalid(
            422,
            "from",
            f"must be later than {whole_from.isoformat()}: the usage of deleted resources "
            "before it is no longer kept here; the invoices of those months hold it",
        )
    lines, currency = rate_window(state.billing, tenant, start, end)
    return UsageView(
        tenant_id=tenant,
        start=start,
        end=end,
        currency=currency or None,
        lines=lines,
        total=total(lines, currency),
    )


def invoices(
    state: GatewayState, tenant: str, *, limit: int, after: OrderKey | None = None
) -> InvoiceList:
    """One page of the tenant's invoices, oldest period first (a key's text is the period)."""
    issued = state.billing.issued(tenant)

    def shown(key: OrderKey) -> InvoiceView | None:
        found = issued.get(key[1])
        return None if found is None else invoice_view(found)

    order = sorted((EPOCH, period) for period in issued)
    items, next_cursor = take_page([order], after, limit, shown)
    return InvoiceList(items=items, next=next_cursor)


def invoice(state: GatewayState, tenant: str, period: str) -> InvoiceView:
    if not _PERIOD.match(period):
        raise invalid(400, "period", "must be a month as YYYY-MM, e.g. 2026-11")
    bounds(period)
    found = state.billing.issued(tenant).get(period)
    if found is None:
        raise not_found("invoice", f"{period} of tenant {tenant}")
    return invoice_view(found)
