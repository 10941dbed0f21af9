"""How many copies of each topic Virga keeps, and refusing to run on topics that have fewer.

The settings are `KafkaSettings.replication_factor` and `.min_insync_replicas`
(``VIRGA_KAFKA_REPLICATION_FACTOR``, ``VIRGA_KAFKA_MIN_INSYNC_REPLICAS``). Unset, they follow the
size of the cluster: 3 copies with 2 in sync on three or more brokers, 1 and 1 on the single-node
dev broker. Every topic is created with them and with unclean leader election off
(`ensure_topics`), and a service refuses to start against a topic it uses that has fewer
(`check_replication`), naming each such topic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from virga_eventlog.settings import (
    MIN_INSYNC_VARIABLE,
    REPLICATION_VARIABLE,
    KafkaSettings,
    KafkaSettingsError,
)

MIN_INSYNC = "min.insync.replicas"
UNCLEAN_ELECTION = "unclean.leader.election.enable"
LEADER_NOT_AVAILABLE = 5
"""A topic just created, whose partitions have no leader yet."""
REPLICATED_CLUSTER = 3
"""Brokers from which the defaults are 3 copies, 2 in sync."""


@dataclass(frozen=True, slots=True)
class Replication:
    """How a topic is replicated: copies of each partition, and how many must acknowledge a
    write (producers use ``acks=all``) before it counts."""

    factor: int
    min_insync: int

    def configs(self) -> dict[str, str]:
        """The topic configs that go with it; a leader is only ever elected from in-sync
        replicas, so an acknowledged write is never lost to a lagging one."""
        return {MIN_INSYNC: str(self.min_insync), UNCLEAN_ELECTION: "false"}

    def describe(self) -> str:
        return f"replication factor {self.factor}, {MIN_INSYNC} {self.min_insync}"


def default_min_insync(factor: int) -> int:
    """2 in sync out of 3 or more copies (one broker may be away); else every copy."""
    return 2 if factor >= REPLICATED_CLUSTER else 1


def for_cluster(
    brokers: int, factor: int | None = None, min_insync: int | None = None
) -> Replication:
    """The replication on a cluster of `brokers`, each setting given or else its default."""
    factor = factor if factor is not None else (3 if brokers >= REPLICATED_CLUSTER else 1)
    min_insync = min_insync if min_insync is not None else default_min_insync(factor)
    if min_insync > factor:
        raise KafkaSettingsError(
            f"{MIN_INSYNC_VARIABLE}={min_insync} is more than the replication factor {factor} "
            f"({REPLICATION_VARIABLE}): no write could ever be acknowledged"
        )
    return Replication(factor, min_insync)


def resolve(settings: KafkaSettings, brokers: int) -> Replication:
    """`settings`' replication on a cluster of `brokers`."""
    return for_cluster(brokers, settings.replication_factor, settings.min_insync_replicas)


@dataclass(frozen=True, slots=True)
class TopicReplication:
    """How a topic on the broker is replicated."""

    name: str
    factor: int
    """Replicas of its least replicated partition."""
    min_insync: int
    unclean_election: bool


def shortfalls(topics: Iterable[TopicReplication], wanted: Replication) -> list[str]:
    """One line per topic replicated less safely than `wanted`, naming it and what it lacks."""
    lines = []
    for topic in sorted(topics, key=lambda t: t.name):
        lacks = []
        if topic.factor < wanted.factor:
            lacks.append(f"replication factor {topic.factor} < {wanted.factor}")
        if topic.min_insync < wanted.min_insync:
            lacks.append(f"{MIN_INSYNC} {topic.min_insync} < {wanted.min_insync}")
        if topic.unclean_election:
            lacks.append(f"{UNCLEAN_ELECTION}=true")
        if lacks:
            lines.append(f"{topic.name}: {', '.join(lacks)}")
    return lines


class UnderReplicated(SystemExit):
    """A service's topics are replicated less than its settings ask: it must not start."""


def refusal(lines: Sequence[str], wanted: Replication) -> UnderReplicated:
    return UnderReplicated(
        f"refusing to start: {len(lines)} topic(s) below the replication setting "
        f"({wanted.describe()}; {REPLICATION_VARIABLE}, {MIN_INSYNC_VARIABLE}): " + "; ".join(lines)
    )


def admin_client(settings: KafkaSettings) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.client_id}-admin")


async def cluster_brokers(admin: AIOKafkaAdminClient) -> int:
    """Brokers the cluster's metadata lists (those alive now)."""
    cluster: dict[str, Any] = await admin.describe_cluster()
    return len(cluster["brokers"])


async def replica_counts(
    admin: AIOKafkaAdminClient, names: Sequence[str], wait_seconds: float = 10.0
) -> dict[str, int]:
    """Replicas of the least replicated partition of each of `names` that exists (and may be
    described). A topic just created may not have its leaders yet: asked again until it has
    (or `wait_seconds`)."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while True:
        counts: dict[str, int] = {}
        pending: list[str] = []
        for topic in await admin.describe_topics(list(names)) if names else []:
            code, partitions = topic["error_code"], topic["partitions"]
            if code == 0 and partitions and all(p["error_code"] == 0 for p in partitions):
                counts[topic["topic"]] = min(len(p["replicas"]) for p in partitions)
            elif code in (0, LEADER_NOT_AVAILABLE):
                pending.append(topic["topic"])
        if not pending or asyncio.get_running_loop().time() > deadline:
            return counts
        await asyncio.sleep(0.2)


UNKNOWN_TOPIC = 3
UNKNOWN_TOPIC_TRIES = 50


async def describe_replication(
    admin: AIOKafkaAdminClient, names: Sequence[str]
) -> list[TopicReplication]:
    """How each of `names` that exists is replicated (a missing topic is left out)."""
    factors = await replica_counts(admin, names)
    if not factors:
        return []
    configs: dict[str, dict[str, str]] = {}
    resources = [
        ConfigResource(
            ConfigResourceType.TOPIC, name, configs={MIN_INSYNC: "", UNCLEAN_ELECTION: ""}
        )
        for name in factors
    ]
    for attempt in range(UNKNOWN_TOPIC_TRIES):
        responses = await admin.describe_configs(resources)
        codes = {r["error_code"] for x in responses for r in x.to_object()["resources"]}
        if UNKNOWN_TOPIC not in codes or attempt == UNKNOWN_TOPIC_TRIES - 1:
            break
        # A topic just made is known to the broker asked a moment after the metadata
        # listed it (a 3-broker cluster): asked again.
        await asyncio.sleep(0.2)
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"] != 0:
                raise KafkaSettingsError(
                    f"cannot describe the configs of topic {resource['resource_name']}: "
                    f"{resource['error_message'] or resource['error_code']}"
                )
            configs[resource["resource_name"]] = {
                c["config_names"]: c["config_value"] for c in resource["config_entries"]
            }
    return [
        TopicReplication(
            name,
            factor,
            int(configs[name].get(MIN_INSYNC) or 1),
            (configs[name].get(UNCLEAN_ELECTION) or "false").lower() == "true",
        )
        for name, factor in factors.items()
    ]


async def check_replication(settings: KafkaSettings, topics: Iterable[str]) -> Replication:
    """The replication `settings` ask for; raises `UnderReplicated` naming every one of
    `topics` that has less."""
    admin = admin_client(settings)
    await admin.start()
    try:
        wanted = resolve(settings, await cluster_brokers(admin))
        lines = shortfalls(await describe_replication(admin, sorted(set(topics))), wanted)
    finally:
        await admin.close()
    if lines:
        raise refusal(lines, wanted)
    return wanted
