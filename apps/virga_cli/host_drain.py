"""`virga host drain NAME [--wait]`: disable a host and live-migrate its running instances
away through the API (admin), following the drain until it ends with --wait."""

from __future__ import annotations

import time
from typing import Any

import click

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.output import Cli, pass_cli


@click.command("drain")
@click.argument("name")
@click.option("--reason", default="", help="Why (shown as the host's disabled_reason).")
@click.option("--wait", is_flag=True, help="Follow the drain until it ends.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def host_drain(cli: Cli, name: str, reason: str, wait: bool, timeout: float) -> None:
    """Drain a host (admin, through the API): disable it and live-migrate every RUNNING
    instance away, a few at a time; stopped ones stay. With --wait, print its progress until
    the host is DRAINED (exit FAILED naming the instances that could not move: they run on)."""
    client = cli.client()
    body: dict[str, Any] = {"action": "drain"}
    if reason:
        body["reason"] = reason
    answer: dict[str, Any] = client.post(f"/v1/hosts/{name}/actions", body)
    if not wait:
        cli.emit(answer, lambda h: cli.out.print(f"draining {name}: drain {h['drain']['id']}"))
        return
    final = wait_drained(client, name, cli, timeout)
    cli.emit(final, lambda h: cli.out.print(f"host {name} is DRAINED: {summary(h['drain'])}"))


def summary(drain: dict[str, Any]) -> str:
    moved, total = len(drain.get("moved", [])), len(drain.get("instances", []))
    stopped = len(drain.get("stopped", []))
    return f"{moved}/{total} moved, {stopped} stopped left in place"


def host_view(client: Client, name: str) -> dict[str, Any]:
    for view in client.paged("/v1/hosts"):
        if view.get("name") == name:
            found: dict[str, Any] = view
            return found
    raise errors.CliFailure(f"no host {name}", errors.API_ERROR)


def wait_drained(
    client: Client, name: str, cli: Cli, timeout: float, interval: float = 1.0
) -> dict[str, Any]:
    """Print the drain's progress as it changes until it ends; the host's final view."""
    printer = cli.err if cli.as_json else cli.out
    deadline, last = time.monotonic() + timeout, ""
    while True:
        view = host_view(client, name)
        drain = view.get("drain") or {}
        moving = ", ".join(drain.get("moving", [])) or "-"
        line = f"{drain.get('status')}: {summary(drain)}; moving: {moving}"
        if line != last:
            printer.print(line)
            last = line
        if drain.get("status") == "DRAINED":
            return view
        if drain.get("status") == "FAILED":
            unmoved = ", ".join(drain.get("unmoved", []))
            raise errors.CliFailure(
                f"drain of host {name} failed: {unmoved} could not move and run on there"
                f" ({drain.get('reason')})",
                errors.FAILED,
            )
        if time.monotonic() > deadline:
            raise errors.CliFailure(
                f"host {name} is still draining after {timeout:g} s", errors.TIMEOUT
            )
        time.sleep(interval)
