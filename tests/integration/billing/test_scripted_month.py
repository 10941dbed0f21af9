"""A month of activity with a price change in the middle and a billing outage yields exactly
the invoice computed by hand, through the API; and `virga audit rerate` agrees with it until
a late event arrives."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from click.testing import CliRunner
from tests.integration.billing.month import (
    EXPECTED_LINES,
    EXPECTED_TOTAL,
    FIRST_HALF,
    PERIOD,
    PRICES_BEFORE,
    PRICES_FROM_16TH,
    SECOND_HALF,
    eventually,
    march,
    sample,
    scripted_month,
)

from virga_cli.main import cli
from virga_events.catalog.billing import InvoiceIssued

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


def rows(lines: list[dict[str, str]]) -> list[tuple[str, ...]]:
    keys = ("resource_id", "kind", "quantity", "unit", "unit_price", "amount")
    return sorted(tuple(line[k] for k in keys) for line in lines)


async def test_a_scripted_month_with_an_outage_is_invoiced_exactly(kafka_bootstrap: str) -> None:
    async with scripted_month(kafka_bootstrap) as month:
        await month.put_prices(PRICES_BEFORE)
        async with month.billing(snapshot=True) as billing:
            await month.play(FIRST_HALF)
            month.clock.now = march(10, 1)

            def caught_up() -> bool:
                usage = billing.state.instances.get("i-a")
                return usage is not None and usage.running_since == march(10)

            await eventually(caught_up, what="billing folding the first half")
        # Billing is down: the price changes and the month goes on without it.
        await month.put_prices(PRICES_FROM_16TH)
        await month.play(SECOND_HALF)
        month.clock.now = march(31, 23)
        async with month.billing(snapshot=False) as billing:
            await asyncio.sleep(1)  # ticks while March is still open issue nothing
            assert billing.state.invoices == {}
            month.clock.now = march(31).replace(month=4, day=1, hour=2)  # past the grace
            await eventually(lambda: billing.state.invoices, what="the March invoice")
            invoice = billing.state.invoices[month.tenant_id][PERIOD]

        assert isinstance(invoice, InvoiceIssued)
        assert (invoice.currency, invoice.total) == ("EUR", EXPECTED_TOTAL)
        assert rows([msgspec.to_builtins(line) for line in invoice.lines]) == EXPECTED_LINES

        # The same invoice through the API, once the gateway has read it.
        path = f"/v1/invoices/{PERIOD}"
        token = month.tenant_token
        runner = month.gateway.runner
        assert runner is not None
        await eventually(lambda: runner.state.billing.invoices, what="the gateway's projection")
        reply = await month.gateway.call("GET", path, token=token)
        assert reply.status == 200, reply.body
        assert (reply.body["period"], reply.body["total"]) == (PERIOD, EXPECTED_TOTAL)
        assert rows(reply.body["lines"]) == EXPECTED_LINES
        assert (await month.gateway.call("GET", "/v1/invoices/2026-04", token=token)).status == 404

        # Re-rating March from the raw events gives what was issued...
        where = ["--bootstrap", kafka_bootstrap, "--namespace", month.settings.namespace]
        rerate = ["audit", "rerate", "--period", PERIOD, *where]
        clean = await asyncio.to_thread(CliRunner().invoke, cli, rerate)
        assert (clean.exit_code, clean.output.strip()) == (0, "invoices match the log")
        # ... until a late sample about March arrives: then it shows the difference.
        await month.write("compute@h1", sample(900_000_000), "i-b", march(31, 23))
        late = await asyncio.to_thread(CliRunner().invoke, cli, rerate)
        assert late.exit_code == 1
        assert f"DIFFERENT {month.tenant_id} {PERIOD} i-b egress" in late.output
        assert "0.900000000 GB, 0.07 EUR" in late.output  # 0.9 GB x 0.08 = 0.072
