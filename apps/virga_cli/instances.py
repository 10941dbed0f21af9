"""`virga instance ...` and `virga flavor ...`: instances and their sizes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import click

from virga_cli import errors
from virga_cli.client import Client
from virga_cli.follow import Printer, history, wait_flow_end, wait_for
from virga_cli.names import resolve, resolve_all
from virga_cli.output import Cli, Column, pass_cli

INSTANCE_COLUMNS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("flavor", "flavor.name"),
    ("host", "host"),
    ("addresses", lambda i: _addresses(i)),
    ("created", "created_at"),
]  # fmt: skip

INSTANCE_FIELDS: list[Column] = [
    ("id", "id"),
    ("name", "name"),
    ("status", "status"),
    ("fault", "fault"),
    ("tenant", "tenant_id"),
    ("flavor", lambda i: _flavor(i.get("flavor") or {})),
    ("image", "image"),
    ("network", "network_id"),
    ("addresses", "addresses"),
    ("floating ips", lambda i: [f["ip"] for f in i.get("floating_ips") or []]),
    ("volumes", "volumes"),
    ("host", "host"),
    ("zone", "availability_zone"),
    ("server group", "server_group"),
    ("hostname", "hostname"),
    ("key", "key_name"),
    ("config drive", "config_drive"),
    ("traits", "required_traits"),
    ("delete on termination", "delete_on_termination"),
    ("restart policy", "restart_policy"),
    ("stop cause", "stop_cause"),
    ("created", "created_at"),
    ("updated", "updated_at"),
]


def _addresses(instance: dict[str, Any]) -> list[str]:
    found = instance.get("addresses") or []
    return [str(a.get("ip", a)) if isinstance(a, dict) else str(a) for a in found]


def _flavor(flavor: dict[str, Any]) -> str:
    if not flavor:
        return "-"
    return (
        f"{flavor.get('name')} ({flavor.get('vcpus')} vCPU, {flavor.get('ram_mb')} MB RAM, "
        f"{flavor.get('disk_gb')} GiB disk)"
    )


@click.group()
def instance() -> None:
    """Virtual machines."""


@instance.command("create")
@click.argument("name")
@click.option("--flavor", required=True, help="A flavor name (`virga flavor list`).")
@click.option("--image", help="Boot from a volume cloned from this image (id or name).")
@click.option("--network", help="Plug a port on this network (id or name).")
@click.option("--server-group", help="One of your server groups (id or name).")
@click.option(
    "--security-group",
    "security_groups",
    multiple=True,
    help="A security group of its port (id or name; repeat; needs --network). Default: the"
    " default group.",
)
@click.option("--zone", "availability_zone", help="Availability zone.")
@click.option("--trait", "traits", multiple=True, help="A trait the host must have (repeat).")
@click.option(
    "--keep-volume", is_flag=True, help="Keep the boot volume when the instance is deleted."
)
@click.option(
    "--restart-policy",
    type=click.Choice(["never", "on-crash", "always"]),
    help="After a stop Virga did not ask for: leave it STOPPED (never, the default), start it"
    " again after a crash (on-crash), or after any such stop (always).",
)
@click.option("--key", "key_name", help="One of your keypairs (`virga keypair list`).")
@click.option(
    "--user-data",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file for cloud-init (#cloud-config or a script), up to 64 KiB: sent base64.",
)
@click.option("--config-drive", is_flag=True, help="Attach a config drive with the metadata.")
@click.option("--tenant", "tenant_id", help="Admins: the tenant that will own it.")
@click.option("--wait", is_flag=True, help="Follow the build event by event until it runs.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def instance_create(
    cli: Cli,
    name: str,
    flavor: str,
    image: str | None,
    network: str | None,
    server_group: str | None,
    security_groups: tuple[str, ...],
    availability_zone: str | None,
    traits: tuple[str, ...],
    keep_volume: bool,
    restart_policy: str | None,
    key_name: str | None,
    user_data: Path | None,
    config_drive: bool,
    tenant_id: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Create instance NAME; with --wait, print each step of its build as it happens."""
    body: dict[str, Any] = {"name": name, "flavor": flavor}
    optional = {
        "image": image,
        "network_id": network,
        "server_group": server_group,
        "availability_zone": availability_zone,
        "restart_policy": restart_policy,
        "key_name": key_name,
        "tenant_id": tenant_id,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    if traits:
        body["required_traits"] = list(traits)
    if keep_volume:
        body["delete_on_termination"] = False
    if user_data is not None:
        body["user_data"] = base64.b64encode(user_data.read_bytes()).decode()
    if config_drive:
        body["config_drive"] = True
    client = cli.client()
    if image is not None:
        body["image"] = resolve(client, "image", image)
    if network is not None:
        body["network_id"] = resolve(client, "network", network)
    if server_group is not None:
        body["server_group"] = resolve(client, "server group", server_group)
    if security_groups:
        body["security_groups"] = resolve_all(client, "security group", security_groups)
    created = client.post("/v1/instances", body)
    if not wait:
        cli.emit(created, lambda i: cli.record(i, INSTANCE_FIELDS))
        return
    # Progress goes to stderr with --json, so that stdout stays one JSON document.
    progress = cli.err if cli.as_json else cli.out
    progress.print(f"instance {name} ({created['id']}) requested; following its build:")
    final = wait_for(client, created["id"], Printer(progress), targets={"RUNNING"}, timeout=timeout)
    cli.emit(final, lambda i: cli.out.print(f"instance {name} is RUNNING on {i.get('host')}"))


@instance.command("list")
@click.option("--status", help="Only these (e.g. RUNNING; DELETED lists deleted ones).")
@click.option("--tenant", "tenant_id", help="Admins: one tenant's instances.")
@pass_cli
def instance_list(cli: Cli, status: str | None, tenant_id: str | None) -> None:
    """List instances (every page)."""
    items = cli.client().paged("/v1/instances", status=status, tenant_id=tenant_id)
    cli.emit({"items": items}, lambda d: cli.table(d["items"], INSTANCE_COLUMNS))


@instance.command("show")
@click.argument("instance_id")
@pass_cli
def instance_show(cli: Cli, instance_id: str) -> None:
    """Show one instance (by id or name)."""
    client = cli.client()
    found = client.get(f"/v1/instances/{resolve(client, 'instance', instance_id)}")
    cli.emit(found, lambda i: cli.record(i, INSTANCE_FIELDS))


def _action(cli: Cli, instance_id: str, action: str, wait: bool, timeout: float) -> None:
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    answer = client.post(f"/v1/instances/{instance_id}/actions", {"action": action})
    if wait:
        target = "STOPPED" if action == "stop" else "RUNNING"
        printer = Printer(cli.err if cli.as_json else cli.out)
        # Only what this action causes: the history before it is already known.
        printer.seen.update(str(e.get("event_id")) for e in history(client, instance_id))
        answer = wait_for(client, instance_id, printer, targets={target}, timeout=timeout)
    cli.emit(answer, lambda i: cli.out.print(f"{action}: instance {i['name']} is {i['status']}"))


def _action_command(action: str, doc: str) -> click.Command:
    @click.argument("instance_id")
    @click.option("--wait", is_flag=True, help="Follow it until it is done.")
    @click.option("--timeout", default=300.0, show_default=True)
    @pass_cli
    def command(cli: Cli, instance_id: str, wait: bool, timeout: float) -> None:
        _action(cli, instance_id, action, wait, timeout)

    command.__doc__ = doc
    return click.command(action)(command)


instance.add_command(_action_command("start", "Start a STOPPED instance."))
instance.add_command(_action_command("stop", "Stop a RUNNING instance (ACPI, then forced)."))
instance.add_command(_action_command("reboot", "Reboot a RUNNING instance."))


@instance.command("migrate")
@click.argument("instance_id")
@click.option("--host", default=None, help="The destination; default: the scheduler picks one.")
@click.option("--wait", is_flag=True, help="Follow the migration until it ends.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def instance_migrate(
    cli: Cli, instance_id: str, host: str | None, wait: bool, timeout: float
) -> None:
    """Live-migrate a RUNNING instance to another host (admin); with --wait, print each step
    until it runs on the new host (exit FAILED if the migration failed: it runs on where it
    was)."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    printer = Printer(cli.err if cli.as_json else cli.out)
    if wait:
        printer.seen.update(str(e.get("event_id")) for e in history(client, instance_id))
    body: dict[str, Any] = {} if host is None else {"host": host}
    answer = client.post(f"/v1/instances/{instance_id}/migrate", body)
    if not wait:
        cli.emit(answer, lambda a: cli.out.print(f"migrating: flow {a['flow_id']}"))
        return
    final = _wait_migrated(client, instance_id, printer, timeout)
    cli.emit(final, lambda i: cli.out.print(f"instance {i['name']} runs on {i['host']}"))


@instance.command("evacuate")
@click.argument("instance_id")
@click.option("--host", default=None, help="The destination; default: the scheduler picks one.")
@click.option("--wait", is_flag=True, help="Follow the evacuation until it ends.")
@click.option("--timeout", default=600.0, show_default=True, help="Seconds --wait waits.")
@pass_cli
def instance_evacuate(
    cli: Cli, instance_id: str, host: str | None, wait: bool, timeout: float
) -> None:
    """Rebuild an instance whose host is down on another host, from its disks (admin): its
    disks are fenced first, so the old guest cannot write; with --wait, print each step until
    it runs on the new host (exit FAILED if the evacuation failed: it stays where it was)."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    printer = Printer(cli.err if cli.as_json else cli.out)
    if wait:
        printer.seen.update(str(e.get("event_id")) for e in history(client, instance_id))
    body: dict[str, Any] = {"action": "evacuate", **({} if host is None else {"host": host})}
    answer = client.post(f"/v1/instances/{instance_id}/actions", body)
    if not wait:
        cli.emit(answer, lambda i: cli.out.print(f"instance {i['name']} is {i['status']}"))
        return
    final = _wait_migrated(client, instance_id, printer, timeout, what="evacuation")
    cli.emit(final, lambda i: cli.out.print(f"instance {i['name']} runs on {i['host']}"))


def _wait_migrated(
    client: Client, instance_id: str, printer: Printer, timeout: float, what: str = "migration"
) -> dict[str, Any]:
    """Print the instance's new events until its migration's (or evacuation's) flow ends;
    its final view."""
    return wait_flow_end(
        client,
        instance_id,
        printer,
        timeout,
        doing="migrating" if what == "migration" else what,
        failed=lambda i, reason: (
            f"{what} of instance {i.get('name')} ({instance_id}) failed:"
            f" {reason}; it runs on {i.get('host')}"
        ),
    )


@instance.command("delete")
@click.argument("instance_id")
@click.option("--wait", is_flag=True, help="Wait until it is DELETED.")
@click.option("--timeout", default=300.0, show_default=True)
@pass_cli
def instance_delete(cli: Cli, instance_id: str, wait: bool, timeout: float) -> None:
    """Delete an instance (and its boot volume, unless it was created with --keep-volume)."""
    client = cli.client()
    instance_id = resolve(client, "instance", instance_id)
    answer = client.delete(f"/v1/instances/{instance_id}")
    if wait:
        printer = Printer(cli.err if cli.as_json else cli.out)
        printer.seen.update(str(e.get("event_id")) for e in history(client, instance_id))
        answer = _wait_deleted(client, instance_id, printer, timeout)
    cli.emit(answer, lambda i: cli.out.print(f"instance {i['name']} is {i['status']}"))


def _wait_deleted(client: Client, instance_id: str, printer: Printer, timeout: float) -> Any:
    try:
        return wait_for(client, instance_id, printer, targets={"DELETED"}, timeout=timeout)
    except errors.ApiProblem as problem:
        if problem.status != 404:
            raise
        # Once DELETED the gateway answers 404: that is the end we waited for.
        return {"id": instance_id, "name": instance_id, "status": "DELETED"}


@click.group()
def flavor() -> None:
    """Instance sizes."""


@flavor.command("list")
@pass_cli
def flavor_list(cli: Cli) -> None:
    """List the flavors."""
    answer = {"items": cli.client().paged("/v1/flavors")}
    columns: list[Column] = [
        ("name", "name"),
        ("vcpus", "vcpus"),
        ("ram_mb", "ram_mb"),
        ("disk_gb", "disk_gb"),
    ]
    cli.emit(answer, lambda d: cli.table(d["items"], columns))


@flavor.command("create")
@click.argument("name")
@click.option("--vcpus", type=int, required=True)
@click.option("--ram-mb", type=int, required=True)
@click.option("--disk-gb", type=int, required=True)
@pass_cli
def flavor_create(cli: Cli, name: str, vcpus: int, ram_mb: int, disk_gb: int) -> None:
    """Admins: add a flavor."""
    body = {"name": name, "vcpus": vcpus, "ram_mb": ram_mb, "disk_gb": disk_gb}
    answer = cli.client().post("/v1/flavors", body)
    cli.emit(answer, lambda f: cli.out.print(f"flavor {f['name']} created"))
