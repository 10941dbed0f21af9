"""Create a namespace's topics and every service's ACLs on a secure cluster, as its admin.

``python -m virga_eventlog.provision`` connects with the ``VIRGA_KAFKA_*`` variables (a super
user's) and applies `virga_topics` and `virga_acls` for ``VIRGA_NAMESPACE``; ``--print``
only lists the bindings, one per line, for review or for Kafka's own ``kafka-acls`` tool.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from virga_eventlog.acls import create_acls, virga_acls
from virga_eventlog.settings import KafkaSettings, KafkaSettingsError
from virga_eventlog.topics import ensure_topics, virga_topics


async def provision(settings: KafkaSettings, partitions: int) -> list[str]:
    """Topics created (those missing) after which every ACL is in force."""
    created = await ensure_topics(
        settings, virga_topics(partitions=partitions, namespace=settings.namespace)
    )
    await create_acls(settings, virga_acls(settings.namespace))
    return created


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m virga_eventlog.provision", description=__doc__)
    parser.add_argument("--print", action="store_true", help="list the ACLs; change nothing")
    parser.add_argument("--partitions", type=int, default=6, help="of each event topic")
    args = parser.parse_args(argv)
    try:
        settings = KafkaSettings.from_env(client_id="virga-provision")
    except KafkaSettingsError as error:
        print(f"provision: {error}", file=sys.stderr)
        return 2
    if args.print:
        for acl in virga_acls(settings.namespace):
            print(acl)
        return 0
    created = asyncio.run(provision(settings, args.partitions))
    acls = len(virga_acls(settings.namespace))
    print(f"namespace {settings.namespace}: {len(created)} topics created, {acls} ACLs in force")
    return 0


if __name__ == "__main__":
    sys.exit(main())
