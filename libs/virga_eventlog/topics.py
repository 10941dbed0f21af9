"""Virga's topics, their partition counts and retention, and creating them on a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError, for_code

from virga_eventlog.replication import (
    Replication,
    UnderReplicated,
    admin_client,
    cluster_brokers,
    replica_counts,
    resolve,
)
from virga_eventlog.settings import KafkaSettings

SERVICES = ("gateway", "scheduler", "compute", "storage", "network", "billing")
"""Each service owns exactly one event topic; others only read it."""

AGENT_SERVICES = ("compute", "network")
"""Services with one process per host. Each host's agent writes its own event topic
(`host_topic`), which only its host's user may write, so no host can write another's events."""

HOST_TOPIC_PARTITIONS = 1
"""Of a host's event topic: one writer, whose events stay in the order it wrote them."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic as Virga wants it on the broker."""

    name: str
    partitions: int
    compacted: bool = False
    """Snapshot topics keep only the newest value per key; event topics keep every record."""

    def configs(self) -> dict[str, str]:
        if self.compacted:
            return {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "0",
                "max.message.bytes": str(8 * 1024 * 1024),
            }
        # The log is the system of record: event topics are never deleted by time or size.
        return {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"}


def event_topic(service: str, namespace: str = "virga") -> str:
    """`<ns>.api` is the gateway's topic (requests); every other service writes `<ns>.<name>`."""
    return f"{namespace}.api" if service == "gateway" else f"{namespace}.{service}"


def host_topic(topic: str, host: str) -> str:
    """`<ns>.compute.<host>`: the event topic of `host`'s agent in the family of `topic`."""
    return f"{topic}.{host}"


def host_topic_spec(topic: str, host: str) -> TopicSpec:
    return TopicSpec(host_topic(topic, host), HOST_TOPIC_PARTITIONS)


def agent_families(namespace: str = "virga") -> tuple[str, ...]:
    """The event topics (`<ns>.compute`, `<ns>.network`) whose per-host topics are read with
    them: a consumer of one reads every `host_topic` of it too."""
    return tuple(event_topic(service, namespace) for service in AGENT_SERVICES)


def family_of(topic: str, families: Iterable[str]) -> tuple[str, str] | None:
    """(family, host) of a per-host topic of `families`; (family, "") of a family itself;
    None for any other topic."""
    for family in families:
        if topic == family:
            return family, ""
        if topic.startswith(f"{family}.") and len(topic) > len(family) + 1:
            return family, topic[len(family) + 1 :]
    return None


def snapshot_topic(service: str, namespace: str = "virga", instance: str = "") -> str:
    """`<ns>.snapshots.<service>`; a per-host instance's own `<ns>.snapshots.<service>.<host>`,
    which only that host's user may write (`virga_eventlog.hosts`), so no host can plant the
    snapshot another restores."""
    base = f"{namespace}.snapshots.{service}"
    return f"{base}.{instance}" if instance else base


def instance_snapshot_spec(service: str, namespace: str, instance: str) -> TopicSpec:
    """The snapshot topic of one instance of `service` (compacted, one partition)."""
    return TopicSpec(snapshot_topic(service, namespace, instance), 1, compacted=True)


def dead_letter_topic(service: str, namespace: str = "virga") -> str:
    return f"{namespace}.deadletter.{service}"


def virga_topics(partitions: int = 6, namespace: str = "virga") -> list[TopicSpec]:
    """Every topic the control plane uses, for `ensure_topics` at start-up."""
    specs: list[TopicSpec] = []
    for service in SERVICES:
        specs.append(TopicSpec(event_topic(service, namespace), partitions))
        specs.append(TopicSpec(snapshot_topic(service, namespace), 1, compacted=True))
        specs.append(TopicSpec(dead_letter_topic(service, namespace), 1))
    return specs


async def ensure_topics(
    settings: KafkaSettings, specs: Iterable[TopicSpec], replication: Replication | None = None
) -> list[str]:
    """Create the topics that do not exist yet; return the names created.

    They get `replication`, by default the settings' (`virga_eventlog.replication.resolve`):
    that many copies, `min.insync.replicas`, and unclean leader election off.
    A topic that exists is left as it is (its partition count is part of the key->partition
    mapping and must never change under running services); `check_replication` tells a
    service whether it is replicated enough.
    """
    admin = admin_client(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [s for s in specs if s.name not in existing]
        if not wanted:
            return []
        brokers = await cluster_brokers(admin)
        replication = replication or resolve(settings, brokers)
        if replication.factor > brokers:
            names = ", ".join(s.name for s in wanted)
            raise UnderReplicated(
                f"cannot create {names} with {replication.describe()}: "
                f"the cluster has {brokers} broker(s) alive"
            )
        new = [
            NewTopic(
                s.name,
                num_partitions=s.partitions,
                replication_factor=replication.factor,
                topic_configs={**s.configs(), **replication.configs()},
            )
            for s in wanted
        ]
        response = await admin.create_topics(new)
        created = []
        for topic_error in response.to_object()["topic_errors"]:
            error = for_code(topic_error["error_code"])
            if topic_error["error_code"] == 0:
                created.append(topic_error["topic"])
            # Another process may have created it between list and create: same outcome.
            # Under ACLs a service may create only its own topics, and sees only those it may
            # describe: the others are its owner's or the administrator's to create.
            elif error not in (TopicAlreadyExistsError, TopicAuthorizationFailedError):
                raise error(f"cannot create topic {topic_error['topic']}")
        await appeared(admin, created)
        return created
    finally:
        await admin.close()


async def appeared(
    admin: AIOKafkaAdminClient, names: list[str], wait_seconds: float = 10.0
) -> None:
    """Wait (up to `wait_seconds`) until the broker's metadata shows `names` with their leaders, so
    whoever describes them next sees what was created."""
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while names and asyncio.get_running_loop().time() < deadline:
        if set(await replica_counts(admin, names, wait_seconds=0)) >= set(names):
            return
        await asyncio.sleep(0.1)
