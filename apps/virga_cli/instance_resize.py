"""`virga instance resize NAME FLAVOR [--wait]`: a cold resize to another flavor through the
API, followed with --wait until the flow ends."""

from __future__ import annotations

from typing import Any

import click

from virga_cli.client import Client
from virga_cli.follow import Printer, history, wait_flow_end
from virga_cli.names import resolve
from virga_cli.output import Cli, pass_cli


@click.command("resize")
@click.argument("instance_id")
@click.argument("flavor")
@click.option("--wait", is_flag=True, help="Follow the resize until it ends.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def instance_resize(cli: Cli, instance_id: str, flavor: str, wait: bool, timeout: float) -> None:
    """Resize a RUNNING or STOPPED instance to FLAVOR (its disk never smaller): it is stopped,
    its boot volume grown and it is started again with the new size. With --wait, print each
    step until it ends (exit FAILED if the resize failed: it runs on as it was)."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    printer = Printer(cli.err if cli.as_json else cli.out)
    if wait:
        printer.seen.update(str(e.get("event_id")) for e in history(client, instance_id))
    body = {"action": "resize", "flavor": flavor}
    answer = client.post(f"/v1/instances/{instance_id}/actions", body)
    if not wait:
        cli.emit(answer, lambda i: cli.out.print(f"resize: instance {i['name']} is {i['status']}"))
        return
    final = _wait_resized(client, instance_id, printer, timeout)
    cli.emit(
        final,
        lambda i: cli.out.print(
            f"instance {i['name']} is {i['status']} as {(i.get('flavor') or {}).get('name')}"
        ),
    )


def _wait_resized(
    client: Client, instance_id: str, printer: Printer, timeout: float
) -> dict[str, Any]:
    """Print the instance's new events until its resize's flow ends; its final view."""
    return wait_flow_end(
        client,
        instance_id,
        printer,
        timeout,
        doing="resizing",
        failed=lambda i, reason: (
            f"resize of instance {i.get('name')} ({instance_id}) failed:"
            f" {reason}; it is {i.get('status')} as it was"
        ),
    )
