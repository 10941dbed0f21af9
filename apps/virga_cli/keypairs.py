"""`virga keypair ...`: the SSH public keys a tenant's instances are given."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from virga_cli.output import Cli, Column, pass_cli

KEYPAIR_COLUMNS: list[Column] = [
    ("name", "name"),
    ("type", "type"),
    ("fingerprint", "fingerprint"),
    ("created", "created_at"),
]
KEYPAIR_FIELDS: list[Column] = [
    ("name", "name"),
    ("type", "type"),
    ("fingerprint", "fingerprint"),
    ("tenant", "tenant_id"),
    ("public key", "public_key"),
    ("created", "created_at"),
]


def _path(name: str, tenant_id: str | None) -> str:
    path = f"/v1/keypairs/{quote(name, safe='')}"
    return f"{path}?tenant_id={quote(tenant_id, safe='')}" if tenant_id else path


@click.group()
def keypair() -> None:
    """SSH keypairs: public keys your instances' guests let in (`instance create --key`)."""


@keypair.command("import")
@click.argument("name")
@click.option(
    "--file",
    "key_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An OpenSSH public key file, e.g. ~/.ssh/id_ed25519.pub (never the private key).",
)
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@pass_cli
def keypair_import(cli: Cli, name: str, key_file: Path, tenant_id: str | None) -> None:
    """Import the public key in --file as keypair NAME."""
    body: dict[str, Any] = {"name": name, "public_key": key_file.read_text().strip()}
    if tenant_id:
        body["tenant_id"] = tenant_id
    created = cli.client().post("/v1/keypairs", body)
    cli.emit(created, lambda k: cli.record(k, KEYPAIR_FIELDS))


@keypair.command("list")
@pass_cli
def keypair_list(cli: Cli) -> None:
    """List keypairs (every page)."""
    answer = {"items": cli.client().paged("/v1/keypairs")}
    cli.emit(answer, lambda d: cli.table(d["items"], KEYPAIR_COLUMNS))


@keypair.command("show")
@click.argument("name")
@click.option("--tenant", "tenant_id", help="Admins: the tenant whose keypair it is.")
@pass_cli
def keypair_show(cli: Cli, name: str, tenant_id: str | None) -> None:
    """Show keypair NAME, its fingerprint and public key."""
    found = cli.client().get(_path(name, None), tenant_id=tenant_id)
    cli.emit(found, lambda k: cli.record(k, KEYPAIR_FIELDS))


@keypair.command("delete")
@click.argument("name")
@click.option("--tenant", "tenant_id", help="Admins: the tenant whose keypair it is.")
@pass_cli
def keypair_delete(cli: Cli, name: str, tenant_id: str | None) -> None:
    """Delete keypair NAME (instances made with it keep their copy of the key)."""
    cli.client().delete(_path(name, tenant_id))
    cli.emit({"name": name, "deleted": True}, lambda _: cli.out.print(f"deleted {name}"))
