"""`virga login|logout`, and the admin's `tenant` and `token` commands that make tenants."""

from __future__ import annotations

import click

from virga_cli import config
from virga_cli.client import Client
from virga_cli.names import resolve
from virga_cli.output import Cli, Column, pass_cli


@click.command()
@click.option(
    "--token",
    prompt=True,
    hide_input=True,
    help="A tenant or admin token (prompted for when not given, so it stays out of history).",
)
@pass_cli
def login(cli: Cli, token: str) -> None:
    """Check TOKEN against the API and save it (mode 0600) for the next commands."""
    token = token.strip()
    if not token:
        raise click.UsageError("the token is empty")
    # Any authenticated read proves the token; flavors are visible to every caller.
    Client(cli.api, token).get("/v1/flavors")
    path = config.save(config.Saved(token=token, api=cli.api))
    cli.err.print(f"logged in to {cli.api}; token saved in {path}")


@click.command()
@pass_cli
def logout(cli: Cli) -> None:
    """Forget the saved token (VIRGA_TOKEN, if set, still applies)."""
    cli.err.print("token forgotten" if config.forget() else "no saved token")


@click.group()
def tenant() -> None:
    """Admins: tenants."""


@tenant.command("create")
@click.argument("name")
@pass_cli
def tenant_create(cli: Cli, name: str) -> None:
    """Create tenant NAME."""
    created = cli.client().post("/v1/tenants", {"name": name})
    # The bare id on stdout, so `TENANT=$(virga tenant create acme)` works.
    cli.emit(created, lambda t: click.echo(t["id"]))
    if not cli.as_json:
        cli.err.print(f"tenant {created['name']} created")


@tenant.command("list")
@pass_cli
def tenant_list(cli: Cli) -> None:
    """List the tenants."""
    columns: list[Column] = [("id", "id"), ("name", "name"), ("enabled", "enabled")]
    answer = {"items": cli.client().paged("/v1/tenants")}
    cli.emit(answer, lambda d: cli.table(d["items"], columns))


@tenant.command("disable")
@click.argument("tenant_id")
@click.option("--reason", default="", help="Why, kept in the log.")
@pass_cli
def tenant_disable(cli: Cli, tenant_id: str, reason: str) -> None:
    """Disable TENANT_ID: its tokens stop working (401); its resources stay."""
    answer = cli.client().post(
        f"/v1/tenants/{tenant_id}/actions", {"action": "disable", "reason": reason}
    )
    cli.emit(answer, lambda t: cli.err.print(f"tenant {t['name']} disabled"))


@tenant.command("enable")
@click.argument("tenant_id")
@pass_cli
def tenant_enable(cli: Cli, tenant_id: str) -> None:
    """Enable TENANT_ID again: its tokens that are not revoked or expired work again."""
    answer = cli.client().post(f"/v1/tenants/{tenant_id}/actions", {"action": "enable"})
    cli.emit(answer, lambda t: cli.err.print(f"tenant {t['name']} enabled"))


@tenant.command("delete")
@click.argument("tenant")
@pass_cli
def tenant_delete(cli: Cli, tenant: str) -> None:
    """Delete TENANT (id or name), which must own nothing: the API names what it still owns."""
    client = cli.client()
    tenant_id = resolve(client, "tenant", tenant)
    client.delete(f"/v1/tenants/{tenant_id}")
    cli.emit({"id": tenant_id, "deleted": True}, lambda _: cli.out.print(f"deleted {tenant_id}"))


@click.group()
def token() -> None:
    """Admins: tenants' tokens."""


@token.command("create")
@click.argument("tenant_id")
@click.option("--expires-in", type=int, help="Seconds until it expires (default: never).")
@pass_cli
def token_create(cli: Cli, tenant_id: str, expires_in: int | None) -> None:
    """Issue a token for TENANT_ID; printed once (the log keeps only its hash)."""
    body = {} if expires_in is None else {"expires_in_seconds": expires_in}
    issued = cli.client().post(f"/v1/tenants/{tenant_id}/tokens", body)
    # The bare token on stdout, so `virga login --token "$(virga token create ...)"` works.
    cli.emit(issued, lambda t: click.echo(t["token"]))
    if not cli.as_json:
        cli.err.print(f"token id {issued['id']} (revoke with `virga token revoke {issued['id']}`)")


@token.command("list")
@click.argument("tenant_id")
@pass_cli
def token_list(cli: Cli, tenant_id: str) -> None:
    """List TENANT_ID's tokens (every page): ids and dates, never the tokens themselves."""
    columns: list[Column] = [
        ("id", "id"),
        ("created", "created_at"),
        ("expires", "expires_at"),
        ("revoked", "revoked"),
    ]
    items = cli.client().paged(f"/v1/tenants/{tenant_id}/tokens")
    cli.emit({"items": items}, lambda d: cli.table(d["items"], columns))


@token.command("revoke")
@click.argument("token_id")
@pass_cli
def token_revoke(cli: Cli, token_id: str) -> None:
    """Revoke a token."""
    cli.client().delete(f"/v1/tokens/{token_id}")
    cli.err.print(f"token {token_id} revoked")
