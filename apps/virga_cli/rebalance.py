"""`virga rebalance [--apply] [--wait]`: the hosts' rebalancing plan through the API (admin);
with --apply, execute it as live migrations, following it until it ends with --wait."""

from __future__ import annotations

import time
from typing import Any

import click

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.output import Cli, pass_cli


@click.command("rebalance")
@click.option("--apply", "apply_", is_flag=True, help="Execute the plan as live migrations.")
@click.option("--wait", is_flag=True, help="With --apply: follow it until it ends.")
@click.option("--timeout", default=3600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def rebalance(cli: Cli, apply_: bool, wait: bool, timeout: float) -> None:
    """Show the live migrations that would even out the hosts' RAM and vCPU utilisation
    without breaking a placement rule (admin, through the API). With --apply, execute them,
    a few at a time; moves no longer allowed are skipped. With --wait, print the progress
    until every move had its try (exit FAILED naming the instances that could not move)."""
    client = cli.client()
    if not apply_:
        plan: dict[str, Any] = client.get("/v1/rebalance")
        cli.emit(plan, lambda p: _print_plan(cli, p))
        return
    run: dict[str, Any] = client.post("/v1/rebalance")
    if not wait:
        cli.emit(
            run, lambda r: cli.out.print(f"rebalancing: {len(r['moves'])} moves, run {r['id']}")
        )
        return
    final = wait_finished(client, run["id"], cli, timeout)
    cli.emit(final, lambda r: cli.out.print(f"rebalance {r['id']} FINISHED: {summary(r)}"))


def _print_plan(cli: Cli, plan: dict[str, Any]) -> None:
    before, after = plan["score_before"], plan["score_after"]
    if not plan["moves"]:
        cli.out.print(f"balanced: no move lowers the score ({before:.4f})")
        return
    for move in plan["moves"]:
        cli.out.print(
            f"{move['instance_id']}  {move['source']} -> {move['destination']}"
            f"  (score {move['score_after']:.4f})"
        )
    cli.out.print(f"{len(plan['moves'])} moves: score {before:.4f} -> {after:.4f}")


def summary(run: dict[str, Any]) -> str:
    moved, total = len(run.get("moved", [])), len(run.get("moves", []))
    skipped = len(run.get("skipped", []))
    return f"{moved}/{total} moved, {skipped} skipped"


def wait_finished(
    client: Client, run_id: str, cli: Cli, timeout: float, interval: float = 1.0
) -> dict[str, Any]:
    """Print the run's progress as it changes until it ends; the run's final view."""
    printer = cli.err if cli.as_json else cli.out
    deadline, last = time.monotonic() + timeout, ""
    while True:
        run = client.get("/v1/rebalance").get("last_run") or {}
        if run.get("id") != run_id:
            raise errors.CliFailure(f"rebalance {run_id} is no longer the latest", errors.FAILED)
        moving = ", ".join(run.get("moving", [])) or "-"
        line = f"{run.get('status')}: {summary(run)}; moving: {moving}"
        if line != last:
            printer.print(line)
            last = line
        if run.get("status") == "FINISHED":
            if run.get("unmoved"):
                raise errors.CliFailure(
                    f"rebalance {run_id}: {', '.join(run['unmoved'])} could not move"
                    " and run on where they were",
                    errors.FAILED,
                )
            found: dict[str, Any] = run
            return found
        if time.monotonic() > deadline:
            raise errors.CliFailure(
                f"rebalance {run_id} still runs after {timeout:g} s", errors.TIMEOUT
            )
        time.sleep(interval)
