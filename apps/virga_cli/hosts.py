"""`virga host add|list`: the operator adds a hypervisor's identities (Kafka users and ACLs,
cephx user) and lists the hosts added, with the cluster's admin credentials, not the API's.
`virga host drain` (`host_drain.py`) goes through the API, as an admin."""

from __future__ import annotations

import asyncio
import dataclasses
import shlex
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import click
from aiokafka.errors import KafkaConnectionError, KafkaError

from virga_cli import errors
from virga_cli.host_drain import host_drain
from virga_cli.host_setup import (
    DEFAULT_INSTALL_DIR,
    CephTarget,
    CephxError,
    HostSetup,
    setup_host,
)
from virga_cli.output import Cli, pass_cli, print_json
from virga_eventlog import KafkaSettings
from virga_eventlog.hosts import check_host_name, provisioned_hosts
from virga_eventlog.settings import KafkaSettingsError

T = TypeVar("T")

_NAMESPACE = click.option(
    "--namespace",
    envvar="VIRGA_NAMESPACE",
    default="virga",
    show_default=True,
    help="Topic namespace (env VIRGA_NAMESPACE).",
)


def _settings(namespace: str) -> KafkaSettings:
    """The operator's Kafka settings: VIRGA_KAFKA_* as the super user (e.g. `admin`)."""
    try:
        settings = KafkaSettings.from_env(client_id="virga-host")
    except KafkaSettingsError as error:
        raise errors.CliFailure(str(error), errors.USAGE) from None
    return dataclasses.replace(settings, namespace=namespace)


def _run(work: Awaitable[T]) -> T:
    """`work`'s result; Kafka's failures as the CLI's exit codes."""

    async def run() -> T:
        return await work

    try:
        return asyncio.run(run())
    except KafkaConnectionError as error:
        raise errors.CliFailure(f"Kafka unreachable: {error}", errors.UNREACHABLE) from None
    except KafkaError as error:
        # The *AuthorizationFailed* errors, and SaslAuthenticationFailed / AuthenticationFailed.
        if any(word in type(error).__name__ for word in ("Authorization", "Authentication")):
            raise errors.CliFailure(
                f"Kafka refused: {error} (run as the cluster's super user)", errors.AUTH
            ) from None
        raise errors.CliFailure(f"Kafka: {error}", errors.API_ERROR) from None


@click.group()
def host() -> None:
    """Add hypervisors to the cloud (operator; Kafka and Ceph admin credentials); drain one
    (admin, through the API)."""


host.add_command(host_drain)


@host.command("add")
@click.argument("name")
@_NAMESPACE
@click.option(
    "--credentials-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where the host's password files and keyring are kept (made mode 0600, kept when "
    "present).",
)
@click.option(
    "--ceph-conf",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The cluster's ceph.conf: make the host's cephx user (omit for a host without Ceph).",
)
@click.option("--ceph-pool", default="rbd", show_default=True, help="The RBD pool of disks.")
@click.option(
    "--ceph-admin-keyring",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A keyring allowed to create users (default: the conf's).",
)
@click.option(
    "--install-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_INSTALL_DIR,
    show_default=True,
    help="Where the files go on the host, for the settings printed.",
)
@pass_cli
def host_add(
    cli: Cli,
    name: str,
    namespace: str,
    credentials_dir: Path,
    ceph_conf: Path | None,
    ceph_pool: str,
    ceph_admin_keyring: Path | None,
    install_dir: Path,
) -> None:
    """Add hypervisor NAME before its agents first start: its Kafka users `compute-NAME` and
    `network-NAME` (SCRAM), their event and snapshot topics (which only they may write) and
    exact transactional-id ACLs, and the cephx user `client.virga-compute-NAME` (`profile
    rbd` on the pool only). Prints the files
    to copy to the host and each agent's settings. Run with VIRGA_KAFKA_* of the cluster's
    super user; running it again keeps the passwords."""
    try:
        check_host_name(name)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    ceph = None if ceph_conf is None else CephTarget(ceph_conf, ceph_pool, ceph_admin_keyring)
    settings = _settings(namespace)
    try:
        done = _run(setup_host(settings, name, credentials_dir, ceph, install_dir))
    except CephxError as error:
        raise errors.CliFailure(f"Ceph: {error}", errors.API_ERROR) from None
    if cli.as_json:
        print_json(_as_json(done))
        return
    click.echo(
        f"host {done.host} in namespace {done.namespace}: users {', '.join(done.users)}, "
        f"{len(done.topics_created)} topics created, {done.acls} ACLs in force"
    )
    if done.cephx_user:
        click.echo(f"cephx user client.{done.cephx_user}: mon 'profile rbd', "
                   f"osd 'profile rbd pool={ceph_pool}'")  # fmt: skip
    click.echo(f"\ncopy to {done.host} (mode 0600):")
    for there, here in done.files.items():
        click.echo(f"  {here} -> {there}")
    for service, environment in done.environment.items():
        click.echo(f"\n# the {service} agent of {done.host}")
        for variable, value in environment.items():
            click.echo(f"{variable}={shlex.quote(value)}")


def _as_json(done: HostSetup) -> dict[str, Any]:
    return {
        "host": done.host,
        "namespace": done.namespace,
        "kafka_users": list(done.users),
        "topics_created": done.topics_created,
        "acls": done.acls,
        "cephx_user": done.cephx_user,
        "files": {str(there): str(here) for there, here in done.files.items()},
        "environment": done.environment,
    }


@host.command("list")
@_NAMESPACE
@pass_cli
def host_list(cli: Cli, namespace: str) -> None:
    """The hosts added to the namespace (those whose agents have Kafka ACLs)."""
    hosts = _run(provisioned_hosts(_settings(namespace)))
    if cli.as_json:
        print_json({"items": hosts})
        return
    if not hosts:
        cli.err.print("(none)")
    for name in hosts:
        click.echo(name)
