"""The `virga` command line: one entry point, sub-commands by topic."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson

from virga_cli.audit import audit
from virga_events import REGISTRY, json_schema


@click.group()
@click.version_option(package_name="virga-cloud", prog_name="virga")
def cli() -> None:
    """Virga: the control plane of a small public cloud."""


@cli.group()
def events() -> None:
    """Virga's event types."""


@events.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
def events_schema(output: Path | None) -> None:
    """Print a JSON Schema (2020-12) of every event envelope, for consumers in any language."""
    document = orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if output is None:
        sys.stdout.buffer.write(document + b"\n")
    else:
        output.write_bytes(document + b"\n")
        click.echo(f"wrote the schema of {len(list(REGISTRY))} event types to {output}", err=True)


cli.add_command(audit)


def main() -> None:
    cli()
