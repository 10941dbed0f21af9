"""The `virga` command line: one entry point, sub-commands by topic."""

from __future__ import annotations

import click

from virga_cli import config, errors
from virga_cli.audit import audit
from virga_cli.billing import invoice, price, usage
from virga_cli.console import instance_console, instance_console_log
from virga_cli.events import events
from virga_cli.groups import server_group
from virga_cli.hosts import host
from virga_cli.instance_resize import instance_resize
from virga_cli.instances import flavor, instance
from virga_cli.keypairs import keypair
from virga_cli.l3 import external_network, floating_ip, router
from virga_cli.network import network, port, security_group
from virga_cli.output import Cli
from virga_cli.quotas import quota
from virga_cli.rebalance import rebalance
from virga_cli.session import login, logout, tenant, token
from virga_cli.storage import image, volume

EPILOG = "Exit codes: " + "; ".join(f"{code} {what}" for code, what in errors.EXIT_CODES.items())


@click.group(cls=errors.Group, epilog=EPILOG)
@click.version_option(package_name="virga-cloud", prog_name="virga")
@click.option(
    "--api",
    metavar="URL",
    help="The Virga API (env VIRGA_API_URL; else the one `virga login` used; "
    f"else {config.DEFAULT_API}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON, for scripts.")
@click.pass_context
def cli(context: click.Context, api: str | None, as_json: bool) -> None:
    """Virga: the control plane of a small public cloud.

    Log in once with `virga login --token TOKEN` (or set VIRGA_TOKEN), then manage
    instances, volumes, images, networks and bills.
    """
    context.obj = Cli(api=config.resolve_api(api), as_json=as_json)


instance.add_command(instance_resize)

for command in (
    login,
    logout,
    instance,
    flavor,
    volume,
    image,
    network,
    port,
    security_group,
    external_network,
    router,
    floating_ip,
    server_group,
    keypair,
    quota,
    price,
    usage,
    invoice,
    events,
    host,
    rebalance,
    tenant,
    token,
    audit,
):
    cli.add_command(command)
instance.add_command(instance_console)
instance.add_command(instance_console_log)


def main() -> None:
    cli()
