"""`virga price|usage|invoice ...`: the price catalogue, a tenant's usage and its invoices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import click

from virga_cli.output import Cli, Column, pass_cli, when

LINE_COLUMNS: list[Column] = [
    ("resource", "resource_id"),
    ("kind", "kind"),
    ("quantity", "quantity"),
    ("unit", "unit"),
    ("unit price", "unit_price"),
    ("amount", "amount"),
]


@click.group()
def price() -> None:
    """The price catalogue."""


def next_hour(now: datetime) -> str:
    """Prices change at whole hours (invoices stay exact); by default never retroactively."""
    start = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def _flavor_price(value: str) -> tuple[str, str]:
    name, sep, amount = value.partition("=")
    if not sep or not name or not amount:
        raise click.BadParameter(f"{value!r} is not FLAVOR=PRICE", param_hint="--flavor")
    return name, amount


@price.command("set")
@click.option("--currency", required=True, help="ISO 4217 code, e.g. EUR.")
@click.option(
    "--effective-from",
    help="RFC 3339 whole hour the prices apply from (default: the next whole hour, UTC).",
)
@click.option("--flavor", "flavors", multiple=True, help="FLAVOR=PRICE per hour (repeat).")
@click.option("--volume-gb-month", required=True, help="Price of a GB-month of volume.")
@click.option("--egress-gb", required=True, help="Price of a GB (10^9 bytes) sent out.")
@click.option("--public-ip-hour", required=True, help="Price of a public IP for an hour.")
@pass_cli
def price_set(
    cli: Cli,
    currency: str,
    effective_from: str | None,
    flavors: tuple[str, ...],
    volume_gb_month: str,
    egress_gb: str,
    public_ip_hour: str,
) -> None:
    """Admins: set the whole catalogue from an instant on (prices are decimal strings)."""
    moment = effective_from or next_hour(datetime.now(UTC))
    body = {
        "currency": currency,
        "effective_from": moment,
        "flavor_hour": dict(_flavor_price(f) for f in flavors),
        "volume_gb_month": volume_gb_month,
        "egress_gb": egress_gb,
        "public_ip_hour": public_ip_hour,
    }
    answer = cli.client().request("PUT", "/v1/prices", body)
    cli.emit(answer, lambda p: _show_prices(cli, p))


def _show_prices(cli: Cli, prices: dict[str, Any]) -> None:
    currency = prices.get("currency", "")
    cli.record(
        prices,
        [
            ("currency", "currency"),
            ("effective from", "effective_from"),
            ("volume GB-month", "volume_gb_month"),
            ("egress GB", "egress_gb"),
            ("public IP hour", "public_ip_hour"),
        ],
    )
    rows = [{"flavor": k, "hour": f"{v} {currency}"} for k, v in prices["flavor_hour"].items()]
    cli.table(rows, [("flavor", "flavor"), ("per hour", "hour")])


@price.command("show")
@pass_cli
def price_show(cli: Cli) -> None:
    """The catalogue in effect (--json: and every one ever set)."""
    answer = cli.client().get("/v1/prices")

    def human(catalogue: dict[str, Any]) -> None:
        pending = catalogue.get("pending") or []
        if catalogue.get("in_effect") is not None:
            _show_prices(cli, catalogue["in_effect"])
        elif pending:
            cli.err.print("no prices in effect yet")
        else:
            cli.err.print("no prices set yet")
        for upcoming in pending:
            cli.out.print(f"\npending, from {when(upcoming['effective_from'])} (UTC):")
            _show_prices(cli, upcoming)

    cli.emit(answer, human)


@click.command()
@click.option("--from", "start", help="RFC 3339 instant (default: start of this month, UTC).")
@click.option("--to", "end", help="RFC 3339 instant, excluded (default: now).")
@click.option("--tenant", "tenant_id", help="Admins: whose usage.")
@pass_cli
def usage(cli: Cli, start: str | None, end: str | None, tenant_id: str | None) -> None:
    """Your charges so far, rated as an invoice would rate them."""
    answer = cli.client().get("/v1/usage", **{"from": start, "to": end, "tenant_id": tenant_id})

    def human(view: dict[str, Any]) -> None:
        cli.out.print(f"usage of {view['tenant_id']} from {view['from']} to {view['to']}")
        cli.table(view.get("lines") or [], LINE_COLUMNS)
        if view.get("currency"):
            cli.out.print(f"total: {view['total']} {view['currency']}")
        else:
            cli.out.print("total: nothing to pay: no prices were in effect")

    cli.emit(answer, human)


@click.group()
def invoice() -> None:
    """Monthly invoices."""


@invoice.command("list")
@click.option("--tenant", "tenant_id", help="Admins: whose invoices.")
@pass_cli
def invoice_list(cli: Cli, tenant_id: str | None) -> None:
    """Issued invoices, oldest first."""
    answer = {"items": cli.client().paged("/v1/invoices", tenant_id=tenant_id)}
    columns: list[Column] = [
        ("period", "period"),
        ("lines", lambda i: len(i.get("lines") or [])),
        ("total", "total"),
        ("currency", "currency"),
    ]
    cli.emit(answer, lambda d: cli.table(d["items"], columns))


@invoice.command("show")
@click.argument("period")
@click.option("--tenant", "tenant_id", help="Admins: whose invoice.")
@pass_cli
def invoice_show(cli: Cli, period: str, tenant_id: str | None) -> None:
    """The invoice of PERIOD (YYYY-MM), line by line."""
    answer = cli.client().get(f"/v1/invoices/{period}", tenant_id=tenant_id)

    def human(view: dict[str, Any]) -> None:
        cli.out.print(f"invoice {view['period']} of {view['tenant_id']}")
        cli.table(view.get("lines") or [], LINE_COLUMNS)
        cli.out.print(f"total: {view['total']} {view['currency']}")

    cli.emit(answer, human)
