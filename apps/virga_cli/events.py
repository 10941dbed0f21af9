"""`virga events ...`: the JSON Schema of every event type, and following events live."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click
import orjson

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.follow import Printer, history
from virga_cli.names import resolve
from virga_cli.output import Cli, pass_cli
from virga_events import REGISTRY, json_schema


@click.group()
def events() -> None:
    """Virga's events: their schema, and following them live."""


@events.command("schema")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of standard output.",
)
@click.option("--json", "as_json", is_flag=True, help="Accepted: the schema is JSON already.")
def events_schema(output: Path | None, as_json: bool) -> None:
    """Print a JSON Schema (2020-12) of every event envelope, for consumers in any language."""
    document = orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    if output is None:
        sys.stdout.buffer.write(document + b"\n")
    else:
        output.write_bytes(document + b"\n")
        click.echo(f"wrote the schema of {len(list(REGISTRY))} event types to {output}", err=True)


@events.command("tail")
@click.argument("instance_id", required=False)
@click.option("-n", "--lines", default=10, show_default=True, help="Past events shown first.")
@click.option("--follow/--no-follow", default=True, show_default=True)
@click.option("--interval", default=1.0, show_default=True, help="Seconds between polls.")
@pass_cli
def events_tail(
    cli: Cli, instance_id: str | None, lines: int, follow: bool, interval: float
) -> None:
    """Follow INSTANCE_ID's events (an instance's id or name) across services, or those of
    every instance you can see.

    Ctrl-C stops. With --json, one event per line as the API shows it (GET
    /v1/instances/{id}/events: event_id, type, producer, occurred_at, correlation_id,
    causation_id, payload; not the log's envelope, which `virga audit trace --json` prints),
    with instance_id and instance_name when following every instance.
    """
    client = cli.client()
    if instance_id is not None:
        instance_id = resolve(client, "instance", instance_id)
    printer = _printer(cli, many=instance_id is None)
    names: dict[str, str] = {}
    past = _poll(client, instance_id, names)
    past.sort(key=lambda e: str(e.get("occurred_at")))
    shown = past[-lines:] if lines > 0 else []
    # What is not shown now must not come back on the next poll either.
    printer.seen.update(str(e.get("event_id")) for e in past[: len(past) - len(shown)])
    _show(cli, printer, shown)
    try:
        while follow:
            time.sleep(interval)
            try:
                fresh = _poll(client, instance_id, names)
            except errors.ApiProblem as problem:
                if instance_id is not None and problem.status == 404:
                    cli.err.print(f"instance {instance_id} is gone (deleted)")
                    return
                raise
            fresh.sort(key=lambda e: str(e.get("occurred_at")))
            _show(cli, printer, [e for e in fresh if str(e.get("event_id")) not in printer.seen])
    except KeyboardInterrupt:
        return


def _printer(cli: Cli, *, many: bool) -> Printer:
    if not many:
        return Printer(cli.out)
    return Printer(cli.out, prefix=lambda e: f"{str(e.get('instance_name', '?'))[:20]:<20} ")


def _show(cli: Cli, printer: Printer, batch: list[dict[str, Any]]) -> None:
    if not cli.as_json:
        printer.show(batch)
        return
    for event in batch:
        printer.seen.add(str(event.get("event_id")))
        sys.stdout.buffer.write(orjson.dumps(event) + b"\n")
    sys.stdout.flush()


def _poll(client: Client, instance_id: str | None, names: dict[str, str]) -> list[dict[str, Any]]:
    if instance_id is not None:
        return history(client, instance_id)
    # No log-wide feed in the API (tenancy is per resource): walk every visible instance.
    found: list[dict[str, Any]] = []
    for instance in client.paged("/v1/instances"):
        names[instance["id"]] = instance.get("name", instance["id"])
        try:
            batch = history(client, instance["id"])
        except errors.ApiProblem as problem:
            if problem.status == 404:  # deleted between the listing and now
                continue
            raise
        for event in batch:
            # Which instance each event is about, since they come from many histories.
            found.append(
                {**event, "instance_id": instance["id"], "instance_name": names[instance["id"]]}
            )
    return found
