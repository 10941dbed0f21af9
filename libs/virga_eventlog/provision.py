"""Create a namespace's topics and every service's ACLs on a secure cluster, as its admin.

``python -m virga_eventlog.provision`` connects with the ``VIRGA_KAFKA_*`` variables (a super
user's) and applies `virga_topics` and `virga_acls` for ``VIRGA_NAMESPACE``; ``--print``
only lists the bindings, one per line, for review or for Kafka's own ``kafka-acls`` tool.

``--host HOST --credentials-dir DIR`` adds an agent host instead (`virga_eventlog.hosts`): its
users ``compute-HOST`` and ``network-HOST`` with the passwords in ``DIR/<user>.password``
(generated, mode 0600, when the file does not exist yet), their snapshot topics and ACLs.
Copy those two files to the host, for its agents' ``VIRGA_KAFKA_PASSWORD_FILE``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from virga_eventlog.acls import create_acls, host_acls, virga_acls
from virga_eventlog.hosts import add_host, check_host_name, host_users, new_password
from virga_eventlog.settings import KafkaSettings, KafkaSettingsError
from virga_eventlog.topics import ensure_topics, virga_topics


async def provision(settings: KafkaSettings, partitions: int) -> list[str]:
    """Topics created (those missing) after which every ACL is in force."""
    created = await ensure_topics(
        settings, virga_topics(partitions=partitions, namespace=settings.namespace)
    )
    await create_acls(settings, virga_acls(settings.namespace))
    return created


def host_passwords(host: str, directory: Path) -> dict[str, str]:
    """The password of each of `host`'s users from `directory`, made where missing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords = {}
    for user in host_users(host):
        path = directory / f"{user}.password"
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(new_password())
        passwords[user] = path.read_text().strip()
    return passwords


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virga_eventlog.provision", description=__doc__)
    parser.add_argument("--print", action="store_true", help="list the ACLs; change nothing")
    parser.add_argument("--partitions", type=int, default=6, help="of each event topic")
    parser.add_argument("--host", help="add this agent host: its users, topics and ACLs")
    parser.add_argument("--credentials-dir", type=Path, help="with --host: its password files")
    args = parser.parse_args(argv)
    try:
        settings = KafkaSettings.from_env(client_id="virga-provision")
        if args.host is not None:
            check_host_name(args.host)
    except (KafkaSettingsError, ValueError) as error:
        print(f"provision: {error}", file=sys.stderr)
        return 2
    if args.host is not None:
        return _host(settings, args.host, args.credentials_dir, args.print)
    if args.print:
        for acl in virga_acls(settings.namespace):
            print(acl)
        return 0
    created = asyncio.run(provision(settings, args.partitions))
    acls = len(virga_acls(settings.namespace))
    print(f"namespace {settings.namespace}: {len(created)} topics created, {acls} ACLs in force")
    return 0


def _host(settings: KafkaSettings, host: str, credentials: Path | None, dry: bool) -> int:
    if dry:
        for acl in host_acls(host, settings.namespace):
            print(acl)
        return 0
    if credentials is None:
        print("provision: --host needs --credentials-dir", file=sys.stderr)
        return 2
    added = asyncio.run(add_host(settings, host, host_passwords(host, credentials)))
    print(
        f"host {host} in namespace {settings.namespace}: users {', '.join(added.users)}, "
        f"{len(added.topics_created)} topics created, {added.acls} ACLs in force"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
