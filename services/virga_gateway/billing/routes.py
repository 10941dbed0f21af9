"""Billing: the price catalogue (admin sets it), a tenant's usage and its invoices."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from aiohttp import web

from virga_gateway.billing import commands, queries
from virga_gateway.billing.bodies import SetPrices
from virga_gateway.billing.views import (
    InvoiceList,
    InvoiceView,
    PriceCatalogue,
    PricesView,
    UsageView,
)
from virga_gateway.context import Call
from virga_gateway.problems import invalid
from virga_gateway.routing import QueryParam, Route, json_response, page_params, page_query
from virga_gateway.writes import commit, read_body

# RFC 3339: a date, a time and an explicit offset (Z or +hh:mm), nothing looser.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)

TENANT_ID = QueryParam(
    "tenant_id",
    {"type": "string"},
    "Whose figures (admins must name a tenant; tenants see their own).",
)


def instant_query(request: web.Request, name: str, default: datetime) -> datetime:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not _RFC3339.match(raw):
        raise invalid(400, name, "must be an RFC 3339 instant, e.g. 2026-11-01T00:00:00Z")
    # Python parses up to microseconds; longer fractions are cut, never rounded up.
    text = re.sub(r"(\.\d{6})\d+", r"\1", raw.replace("z", "Z").replace("t", "T"))
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as exc:
        raise invalid(400, name, str(exc)) from None


async def set_prices(request: web.Request, call: Call) -> web.Response:
    body, raw = await read_body(request, SetPrices)
    return await commit(
        request, call, lambda state, now: commands.set_prices(state, body), body=raw
    )


async def get_prices(request: web.Request, call: Call) -> web.Response:
    return json_response(queries.price_catalogue(call.gateway.state, datetime.now(UTC)))


async def get_usage(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    tenant = queries.billed_tenant(state, call.caller, request.query.get("tenant_id"))
    now = datetime.now(UTC)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    start = instant_query(request, "from", month_start)
    end = min(instant_query(request, "to", now), now)
    return json_response(queries.usage(state, tenant, start, end))


async def get_invoices(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    limit, after = page_query(request)
    tenant = queries.billed_tenant(state, call.caller, request.query.get("tenant_id"))
    return json_response(queries.invoices(state, tenant, limit=limit, after=after))


async def get_invoice(request: web.Request, call: Call) -> web.Response:
    state = call.gateway.state
    tenant = queries.billed_tenant(state, call.caller, request.query.get("tenant_id"))
    return json_response(queries.invoice(state, tenant, request.match_info["period"]))


ROUTES = [
    Route(
        "PUT", "/v1/prices", set_prices,
        operation_id="setPrices",
        summary="Set the price catalogue from an instant on (earlier usage keeps its prices)",
        tag="billing", access="admin", status=200, response=PricesView,
        request=SetPrices,
    ),
    Route(
        "GET", "/v1/prices", get_prices,
        operation_id="getPrices", summary="The catalogue in effect and every one ever set",
        tag="billing", access="tenant", status=200, response=PriceCatalogue,
    ),
    Route(
        "GET", "/v1/usage", get_usage,
        operation_id="getUsage",
        summary="A tenant's charges between two instants, rated as on an invoice",
        tag="billing", access="tenant", status=200, response=UsageView,
        query=(
            QueryParam(
                "from", {"type": "string", "format": "date-time"},
                "RFC 3339 instant; default: the start of the current month (UTC). A 422 when "
                "it reaches usage of deleted resources the gateway no longer keeps.",
            ),
            QueryParam(
                "to", {"type": "string", "format": "date-time"},
                "RFC 3339 instant, excluded; default and latest: now.",
            ),
            TENANT_ID,
        ),
        errors=(400, 404, 422),
    ),
    Route(
        "GET", "/v1/invoices", get_invoices,
        operation_id="listInvoices", summary="A tenant's issued invoices, oldest first",
        tag="billing", access="tenant", status=200, response=InvoiceList,
        query=(*page_params("Invoices"), TENANT_ID), errors=(400, 404),
    ),
    Route(
        "GET", "/v1/invoices/{period}", get_invoice,
        operation_id="getInvoice", summary="A tenant's invoice for one month (YYYY-MM)",
        tag="billing", access="tenant", status=200, response=InvoiceView,
        query=(TENANT_ID,), errors=(400,),
    ),
]  # fmt: skip
