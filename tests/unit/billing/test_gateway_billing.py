"""The gateway's billing routes without Kafka: prices validated field by field, usage and
invoices from the projection (folded by billing's own core), each tenant seeing only its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.gateway.app import CONFIG, unstarted
from tests.unit.gateway.events import envelope, fold

from virga_events import Event, new_event
from virga_events.catalog import Flavor, api
from virga_events.catalog.billing import InvoiceIssued, InvoiceLine, PricesSet
from virga_events.catalog.compute import InstanceStarted, InstanceStopped
from virga_events.catalog.storage import VolumeCreated
from virga_gateway.billing import commands, queries
from virga_gateway.openapi import openapi_document
from virga_gateway.problems import Problem
from virga_gateway.routes import ROUTES
from virga_gateway.state import GatewayState
from virga_gateway.tokens import derive_token, token_sha256

Client = TestClient[web.Request, web.Application]
ADMIN = {"Authorization": f"Bearer {CONFIG.admin_token}"}
T1_TOKEN = derive_token(CONFIG.token_secret, "tok-1")
T2_TOKEN = derive_token(CONFIG.token_secret, "tok-2")
T1 = {"Authorization": f"Bearer {T1_TOKEN}"}
T2 = {"Authorization": f"Bearer {T2_TOKEN}"}

GOOD = {
    "currency": "EUR",
    "effective_from": "2026-04-01T00:00:00Z",  # after the usage `projection` has accrued
    "flavor_hour": {"m1.small": "0.10"},
    "volume_gb_month": "0.040",
    "egress_gb": "0.05",
    "public_ip_hour": "0.005",
}


def fact(payload: Event, aggregate: str, when: datetime, tenant: str | None = "t1") -> Any:
    return new_event(
        payload, aggregate_id=aggregate, tenant_id=tenant, producer="test", occurred_at=when
    )


def march(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


def projection() -> GatewayState:
    line = InvoiceLine(
        resource_id="i-1", kind="compute", quantity="24.000000", unit="hour",
        unit_price="0.1", amount="2.40",
    )  # fmt: skip
    invoice = InvoiceIssued(
        tenant="t1", period="2026-02", lines=(line,), total="2.40", currency="EUR"
    )
    prices = PricesSet(
        currency="EUR", effective_from=datetime(2026, 1, 1, tzinfo=UTC),
        flavor_hour={"m1.small": "0.1"}, volume_gb_month="0.04", egress_gb="0.05",
        public_ip_hour="0.005",
    )  # fmt: skip
    small = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)
    admin = api.TokenIssued(token_sha256=token_sha256(CONFIG.admin_token), role="admin")
    token_1 = api.TokenIssued(token_sha256=token_sha256(T1_TOKEN), role="tenant")
    token_2 = api.TokenIssued(token_sha256=token_sha256(T2_TOKEN), role="tenant")
    return fold(
        envelope(admin, "admin"),
        envelope(api.TenantCreated(name="one"), "t1", tenant="t1"),
        envelope(api.TenantCreated(name="two"), "t2", tenant="t2"),
        envelope(token_1, "tok-1", tenant="t1"),
        envelope(token_2, "tok-2", tenant="t2"),
        fact(prices, "prices", datetime(2026, 1, 1, tzinfo=UTC), tenant=None),
        fact(api.InstanceRequested(name="vm", flavor=small), "i-1", march(1)),
        fact(InstanceStarted(host="h1"), "i-1", march(2)),
        fact(InstanceStopped(host="h1"), "i-1", march(3, 12)),  # 36 h
        fact(VolumeCreated(name="data", size_gb=31), "v-1", march(1)),  # 1 GB-month a day
        fact(invoice, "t1", datetime(2026, 3, 2, tzinfo=UTC), tenant="t1"),
    )


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    runner, app = unstarted()
    runner.state = projection()
    runner.ready.set()
    async with TestClient(TestServer(app)) as client:
        yield client


def fields(body: dict[str, Any]) -> list[str]:
    return [error["field"] for error in body.get("errors", [])]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "EURO"}, "currency"),
        ({"currency": "XYZ"}, "currency"),
        ({"egress_gb": "-0.05"}, "egress_gb"),
        ({"egress_gb": 0.05}, "egress_gb"),
        ({"volume_gb_month": "1e3"}, "volume_gb_month"),
        ({"public_ip_hour": "0.00.1"}, "public_ip_hour"),
        ({"flavor_hour": {"m1.small": "cheap"}}, "flavor_hour.m1.small"),
        ({"flavor_hour": {"m9.huge": "1"}}, "flavor_hour.m9.huge"),
        ({"effective_from": "2026-03-01T00:00:00"}, "effective_from"),
        ({"effective_from": "next monday"}, "effective_from"),
        ({"effective_from": "2026-03-01T00:30:00Z"}, "effective_from"),
        ({"effective_from": "2026-03-01T05:00:00+05:30"}, "effective_from"),
        ({"discount": "10%"}, "discount"),
    ],
)
async def test_a_bad_catalogue_is_a_422_naming_the_field(
    client: Client, change: dict[str, Any], field: str
) -> None:
    async with client.put("/v1/prices", json={**GOOD, **change}, headers=ADMIN) as reply:
        assert reply.status == 422
        assert reply.content_type == "application/problem+json"
        assert field in fields(await reply.json())


def test_a_catalogue_is_written_with_canonical_decimals() -> None:
    body = commands.validate_prices(GOOD)
    outcome = commands.set_prices(projection(), body)
    [emit] = outcome.emits
    assert emit.aggregate_id == commands.PRICES_AGGREGATE
    assert emit.payload == PricesSet(
        currency="EUR",
        effective_from=datetime(2026, 4, 1, tzinfo=UTC),
        flavor_hour={"m1.small": "0.10"},
        volume_gb_month="0.040",
        egress_gb="0.05",
        public_ip_hour="0.005",
    )


async def test_only_admins_set_prices_and_everyone_reads_them(client: Client) -> None:
    async with client.put("/v1/prices", json=GOOD, headers=T1) as reply:
        assert reply.status == 403
    async with client.get("/v1/prices", headers=T1) as reply:
        assert reply.status == 200
        catalogue = await reply.json()
    assert catalogue["in_effect"]["flavor_hour"] == {"m1.small": "0.1"}
    assert [c["effective_from"] for c in catalogue["history"]] == ["2026-01-01T00:00:00Z"]


async def test_usage_is_rated_by_billings_core_for_the_callers_tenant(client: Client) -> None:
    query = "from=2026-03-01T00:00:00Z&to=2026-03-11T00:00:00Z"
    async with client.get(f"/v1/usage?{query}", headers=T1) as reply:
        assert reply.status == 200
        usage = await reply.json()
    assert usage["tenant_id"] == "t1"
    assert (usage["from"], usage["to"], usage["currency"]) == (
        "2026-03-01T00:00:00Z", "2026-03-11T00:00:00Z", "EUR",
    )  # fmt: skip
    assert sorted((x["resource_id"], x["quantity"], x["amount"]) for x in usage["lines"]) == [
        ("i-1", "36.000000", "3.60"),  # 36 h x 0.1
        ("v-1", "10.000000", "0.40"),  # 31 GB x 10 of March's 31 days x 0.04
    ]
    assert usage["total"] == "4.00"
    async with client.get(f"/v1/usage?{query}", headers=T2) as reply:
        assert (await reply.json())["lines"] == []
    async with client.get(f"/v1/usage?{query}&tenant_id=t1", headers=T2) as reply:
        assert reply.status == 404
    async with client.get(f"/v1/usage?{query}&tenant_id=t1", headers=ADMIN) as reply:
        assert (await reply.json())["total"] == "4.00"


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ("from=yesterday", 400, "from"),
        ("from=2026-03-01", 400, "from"),
        ("from=2026-03-05T00:00:00Z&to=2026-03-01T00:00:00Z", 422, "to"),
    ],
)
async def test_a_bad_usage_window_names_the_parameter(
    client: Client, query: str, status: int, field: str
) -> None:
    async with client.get(f"/v1/usage?{query}", headers=T1) as reply:
        assert reply.status == status
        assert fields(await reply.json()) == [field]


async def test_admins_must_name_the_tenant(client: Client) -> None:
    async with client.get("/v1/invoices", headers=ADMIN) as reply:
        assert reply.status == 400
        assert fields(await reply.json()) == ["tenant_id"]


async def test_invoices_list_and_one_period_with_404_when_none(client: Client) -> None:
    async with client.get("/v1/invoices", headers=T1) as reply:
        [invoice] = (await reply.json())["items"]
    assert (invoice["period"], invoice["total"], invoice["currency"]) == ("2026-02", "2.40", "EUR")
    async with client.get("/v1/invoices/2026-02", headers=T1) as reply:
        assert await reply.json() == invoice
    async with client.get("/v1/invoices/2026-03", headers=T1) as reply:
        assert reply.status == 404
    async with client.get("/v1/invoices/2026-02", headers=T2) as reply:
        assert reply.status == 404  # another tenant's invoice does not exist for it
    async with client.get("/v1/invoices/2026-13", headers=T1) as reply:
        assert reply.status == 400
        assert fields(await reply.json()) == ["period"]


def test_the_openapi_document_lists_the_billing_operations() -> None:
    document = openapi_document(ROUTES)
    assert {"put", "get"} <= set(document["paths"]["/v1/prices"])
    usage = document["paths"]["/v1/usage"]["get"]
    assert {p.get("name") for p in usage["parameters"]} >= {"from", "to", "tenant_id"}
    assert "404" in document["paths"]["/v1/invoices/{period}"]["get"]["responses"]


def test_a_problem_names_the_field_for_every_bad_price() -> None:
    with pytest.raises(Problem) as raised:
        commands.set_prices(
            projection(),
            commands.validate_prices({**GOOD, "egress_gb": "x", "public_ip_hour": "-1"}),
        )
    assert [e.field for e in raised.value.errors] == ["egress_gb", "public_ip_hour"]


def test_a_catalogue_never_re_prices_usage_already_accrued() -> None:
    # Usage runs to March 3rd 12:00 under January's catalogue: from March 1st, it would be
    # re-priced.
    for moment in ("2026-03-01T00:00:00Z", "2026-03-03T11:00:00Z", "2026-01-01T00:00:00Z"):
        with pytest.raises(Problem) as raised:
            commands.set_prices(
                projection(), commands.validate_prices({**GOOD, "effective_from": moment})
            )
        assert (raised.value.status, [e.field for e in raised.value.errors]) == (
            422,
            ["effective_from"],
        )
        assert "2026-03-03T12:00:00Z at the earliest" in raised.value.errors[0].message
    later = {**GOOD, "effective_from": "2026-03-03T12:00:00Z"}
    assert commands.set_prices(projection(), commands.validate_prices(later)).emits


def test_a_first_catalogue_may_price_usage_that_had_no_price() -> None:
    state = projection()
    state.billing.prices.clear()
    early = {**GOOD, "effective_from": "2026-03-01T00:00:00Z"}
    assert commands.set_prices(state, commands.validate_prices(early)).emits


def test_the_same_catalogue_twice_is_kept_once() -> None:
    state = projection()
    [emit] = commands.set_prices(state, commands.validate_prices(GOOD)).emits
    assert isinstance(emit.payload, PricesSet)
    state.billing.prices.append(emit.payload)  # as the fold would
    again = commands.set_prices(state, commands.validate_prices(GOOD))
    assert (again.status, again.emits) == (200, ())


def test_a_catalogue_set_for_later_shows_as_pending() -> None:
    state = projection()
    [emit] = commands.set_prices(state, commands.validate_prices(GOOD)).emits
    assert isinstance(emit.payload, PricesSet)
    state.billing.prices.append(emit.payload)
    shown = queries.price_catalogue(state, datetime(2026, 3, 20, tzinfo=UTC))
    assert shown.in_effect is not None
    assert shown.in_effect.effective_from == datetime(2026, 1, 1, tzinfo=UTC)
    assert [p.effective_from for p in shown.pending] == [datetime(2026, 4, 1, tzinfo=UTC)]
    assert queries.price_catalogue(state, datetime(2026, 4, 1, tzinfo=UTC)).pending == []
