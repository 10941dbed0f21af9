"""`virga server-group ...`: affinity and anti-affinity between a tenant's instances."""

from __future__ import annotations

from typing import Any

import click

from virga_cli.names import resolve
from virga_cli.output import Cli, Column, pass_cli

GROUP_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("policy", "policy"),
    ("scope", "scope"),
    ("members", lambda g: len(g.get("members") or [])),
]
GROUP_FIELDS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("policy", "policy"),
    ("scope", "scope"),
    ("tenant", "tenant_id"),
    ("members", "members"),
]


@click.group("server-group")
def server_group() -> None:
    """Server groups: keep instances together (affinity) or apart (anti-affinity)."""


@server_group.command("create")
@click.argument("name")
@click.option(
    "--policy",
    required=True,
    type=click.Choice(["affinity", "anti-affinity"]),
    help="Together or apart.",
)
@click.option(
    "--scope",
    type=click.Choice(["host", "rack"]),
    default="host",
    show_default=True,
    help="What together or apart means: the same host, or the same rack.",
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def server_group_create(
    cli: Cli, name: str, policy: str, scope: str, tenant_id: str | None
) -> None:
    """Create server group NAME (then `instance create --server-group NAME`)."""
    body: dict[str, Any] = {"name": name, "policy": policy, "scope": scope}
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = cli.client().post("/v1/server-groups", body)
    cli.emit(created, lambda g: cli.record(g, GROUP_FIELDS))


@server_group.command("list")
@pass_cli
def server_group_list(cli: Cli) -> None:
    """List server groups."""
    answer = {"items": cli.client().paged("/v1/server-groups")}
    cli.emit(answer, lambda d: cli.table(d["items"], GROUP_COLUMNS))


@server_group.command("show")
@click.argument("group_id")
@pass_cli
def server_group_show(cli: Cli, group_id: str) -> None:
    """Show a server group (by id or name) and its members."""
    client = cli.client()
    found = client.get(f"/v1/server-groups/{resolve(client, 'server group', group_id)}")
    cli.emit(found, lambda g: cli.record(g, GROUP_FIELDS))


@server_group.command("delete")
@click.argument("group_id")
@pass_cli
def server_group_delete(cli: Cli, group_id: str) -> None:
    """Delete a server group (by id or name) that no instance is in."""
    client = cli.client()
    group_id = resolve(client, "server group", group_id)
    client.delete(f"/v1/server-groups/{group_id}")
    cli.emit({"id": group_id, "deleted": True}, lambda _: cli.out.print(f"deleted {group_id}"))
