"""Create a namespace's topics and every service's ACLs on a secure cluster, as its admin.

``python -m virga_eventlog.provision`` connects with the ``VIRGA_KAFKA_*`` variables (a super
user's) and applies `virga_topics` and `virga_acls` for ``VIRGA_NAMESPACE``; ``--print``
only lists the bindings, one per line, for review or for Kafka's own ``kafka-acls`` tool.
Topics are created with ``VIRGA_KAFKA_REPLICATION_FACTOR`` copies, ``min.insync.replicas``
``VIRGA_KAFKA_MIN_INSYNC_REPLICAS`` and unclean leader election off (unset: 3 and 2 on a
cluster of three or more brokers, else 1 and 1; `virga_eventlog.replication`).

``--credentials-dir DIR`` also creates (or sets the passwords of) the SCRAM users of every
service and of the auditor, from ``DIR/<user>.password`` (generated, mode 0600, when missing):
for a broker whose storage was formatted without them (the Compose file's).

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

from virga_eventlog.acls import AUDITOR, CONTROLLERS, create_acls, host_acls, virga_acls
from virga_eventlog.hosts import (
    add_host,
    check_host_name,
    host_users,
    new_password,
    upsert_scram_users,
)
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
    return passwords_in(directory, host_users(host))


def passwords_in(directory: Path, users: Sequence[str]) -> dict[str, str]:
    """The password of each of `users` from `directory`, made where missing."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    passwords = {}
    for user in users:
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
    parser.add_argument(
        "--credentials-dir", type=Path, help="password files of the users to create or update"
    )
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
    if args.credentials_dir is not None:
        users = passwords_in(args.credentials_dir, (*CONTROLLERS, AUDITOR))
        asyncio.run(upsert_scram_users(settings, users))
        print(f"users {', '.join(users)}: passwords in {args.credentials_dir}")
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
