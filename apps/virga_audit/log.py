"""Reads a namespace's event topics from the beginning to their current end, batch by batch."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

from aiokafka.admin import AIOKafkaAdminClient

from virga_eventlog import SERVICES, KafkaSettings, LogReader, RawRecord, event_topic
from virga_eventlog.topics import agent_families


async def event_topics(settings: KafkaSettings) -> list[str]:
    """The namespace's event topics that exist on the broker (services not deployed yet have
    none, and that is no finding)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=f"{settings.client_id}-meta")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
    finally:
        await admin.close()
    return [t for t in (event_topic(s, settings.namespace) for s in SERVICES) if t in existing]


async def read_topics(
    settings: KafkaSettings, topics: Iterable[str], partition_fetch_bytes: int = 16 * 1024 * 1024
) -> AsyncIterator[list[RawRecord]]:
    """Every committed record of `topics` up to their ends at the start of the read; of
    `<ns>.compute` and `<ns>.network`, every host's topic's too.

    read_committed: an aborted transaction's records were never part of the log, and an open
    one's may still be; neither may count as tampering. `partition_fetch_bytes` bounds what
    one fetch brings of each partition.
    """
    wanted = list(topics)
    if not wanted:
        return
    families = [t for t in agent_families(settings.namespace) if t in wanted]
    client_id = f"{settings.client_id}-audit"
    async with LogReader(
        settings,
        wanted,
        client_id=client_id,
        families=families,
        partition_fetch_bytes=partition_fetch_bytes,
    ) as reader:
        ends = await reader.end_offsets()
        async for batch in reader.read_range({}, ends):
            yield batch
