"""`virga quota show|set|defaults`: a tenant's limits and usage, and admins' changes to them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from virga_cli.output import Cli, pass_cli
from virga_events.catalog.quotas import QUOTA_RESOURCES, UNLIMITED

QUOTA_COLUMNS = [("resource", "resource"), ("in use", "usage"), ("limit", "limit")]


@click.group()
def quota() -> None:
    """Limits on what a tenant may have (instances, vCPUs, RAM, volumes ...)."""


def _limit(value: str) -> int | None:
    if value == "unlimited":
        return UNLIMITED
    if value == "default":
        return None
    try:
        number = int(value)
    except ValueError:
        number = -2
    if number < UNLIMITED:
        raise click.BadParameter(f"{value!r}: a number >= 0, 'unlimited' or 'default'")
    return number


def _limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for name in reversed(QUOTA_RESOURCES):
        flag = "--" + name.replace("_", "-")
        command = click.option(
            flag, name, metavar="N", help=f"Limit of {name} (N, 'unlimited' or 'default')."
        )(command)
    return command


def _body(limits: dict[str, str | None]) -> dict[str, int | None]:
    body = {name: _limit(value) for name, value in limits.items() if value is not None}
    if not body:
        raise click.UsageError("name at least one limit, e.g. --instances 20")
    return body


def _rows(view: dict[str, Any]) -> list[dict[str, Any]]:
    usage = view.get("usage", {})
    rows = []
    for name in QUOTA_RESOURCES:
        limit = view["limits"][name]
        shown = "unlimited" if limit == UNLIMITED else str(limit)
        if name in view.get("overridden", []):
            shown += " (own)"
        rows.append({"resource": name, "usage": usage.get(name, "-"), "limit": shown})
    return rows


def _show(cli: Cli, view: dict[str, Any]) -> None:
    cli.table(_rows(view), QUOTA_COLUMNS)


@quota.command("show")
@click.argument("tenant_id", required=False)
@pass_cli
def quota_show(cli: Cli, tenant_id: str | None) -> None:
    """Your limits and usage; admins name the TENANT_ID."""
    path = f"/v1/tenants/{tenant_id}/quotas" if tenant_id else "/v1/quotas"
    cli.emit(cli.client().get(path), lambda view: _show(cli, view))


@quota.command("set")
@click.argument("tenant_id")
@_limit_options
@pass_cli
def quota_set(cli: Cli, /, tenant_id: str, **limits: str | None) -> None:
    """Admins: change a tenant's own limits (those not named stay as they are)."""
    answer = cli.client().request("PUT", f"/v1/tenants/{tenant_id}/quotas", _body(limits))
    cli.emit(answer, lambda view: _show(cli, view))


@quota.command("defaults")
@_limit_options
@pass_cli
def quota_defaults(cli: Cli, /, **limits: str | None) -> None:
    """The limits of every tenant without its own; admins change them with options."""
    client = cli.client()
    if any(value is not None for value in limits.values()):
        answer = client.request("PUT", "/v1/quotas/defaults", _body(limits))
    else:
        answer = client.get("/v1/quotas/defaults")
    cli.emit(answer, lambda view: _show(cli, view))
