"""The rebuild folds: every record of the log passes through here once at start-up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from virga_eventlog import (
    ChainHead,
    KafkaSettings,
    LogReader,
    Positions,
    RawRecord,
    RecentIds,
    read_dead_letter,
)
from virga_events import Envelope, EventDecodeError, EventRegistry, decode, record_hash

log = structlog.get_logger(__name__)

S = TypeVar("S")
Evolve = Callable[[S, Envelope], S]
Refuse = Callable[[RawRecord, Envelope], str | None]
"""Why a record is not to be folded (`virga_runtime.hostcheck`), None if it is."""

# The two loops below run once per record of the whole log: kept tight on purpose. A record
# that does not decode, or that evolve refuses, was dead-lettered when it was first seen live.


def fold_inputs(
    batch: list[RawRecord],
    registry: EventRegistry,
    evolve: Evolve[S],
    state: S,
    recent: RecentIds,
    refuse: Refuse | None = None,
    key: Callable[[str, Envelope], str] | None = None,
) -> tuple[S, int]:
    """Fold already-decided input records; returns the new state and how many applied.
    `refuse` (`virga_runtime.hostcheck`) drops records as they were dropped live, and `key`
    is the id each is deduplicated by (by default its event id)."""
    seen, applied = recent.seen, 0
    for record in batch:
        try:
            envelope = decode(record.value, registry)  # type: ignore[arg-type]
        except (EventDecodeError, TypeError):
            continue
        if refuse is not None and refuse(record, envelope) is not None:
            continue
        if seen(envelope.event_id if key is None else key(record.topic, envelope)):
            continue
        try:
            state = evolve(state, envelope)
            applied += 1
        except Exception as exc:
            log.warning("event_refused_on_replay", event_id=envelope.event_id, error=str(exc))
    return state, applied


def fold_own(
    batch: list[RawRecord],
    registry: EventRegistry,
    evolve: Evolve[S],
    state: S,
    me: str,
    snap_seq: int,
    head: ChainHead,
    refuse: Refuse | None = None,
) -> tuple[S, int, ChainHead]:
    """Fold records of the service's own topic; tracks `me`'s hash-chain head.

    `me`'s events up to `snap_seq` are already in the snapshot's state and are skipped; a
    shared topic's peers' events are folded as they come.
    """
    applied = 0
    head_seq, head_value = head.seq, None
    for record in batch:
        try:
            envelope = decode(record.value, registry)  # type: ignore[arg-type]
        except (EventDecodeError, TypeError):
            continue
        # First: a record in a peer's topic that names us as its producer is no event of ours.
        if refuse is not None and refuse(record, envelope) is not None:
            continue
        if envelope.producer == me:
            if envelope.seq <= snap_seq:
                continue
            if envelope.seq > head_seq:
                # Hash only the batch's last head, not every record on the way.
                head_seq, head_value = envelope.seq, record.value
        try:
            state = evolve(state, envelope)
            applied += 1
        except Exception as exc:
            log.warning("event_refused_on_replay", event_id=envelope.event_id, error=str(exc))
    if head_value is not None:
        head = ChainHead(head_seq, record_hash(head_value))
    return state, applied, head


async def committed_offsets(
    settings: KafkaSettings, group_id: str, tps: list[TopicPartition], client_id: str
) -> Positions:
    """Input offsets committed with the service's transactions; retried while the group
    coordinator loads (a fresh broker creates __consumer_offsets on first use)."""
    if not tps:
        return {}
    admin = AIOKafkaAdminClient(**settings.client_kwargs(), client_id=client_id)
    await admin.start()
    offsets: dict[TopicPartition, Any] = {}
    try:
        for attempt in range(100):
            try:
                offsets = await admin.list_consumer_group_offsets(group_id, partitions=tps)
                break
            except KafkaError as exc:
                if not exc.retriable or attempt == 99:
                    raise
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def refused_live(
    settings: KafkaSettings, topic: str, producer: str, client_id: str
) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every record `producer` dead-lettered to `topic`.

    A refusal that depended on the state of the moment (`ServiceDefinition.placed_on`) could
    come out otherwise when the log is folded again in another order: a rebuild drops what
    was dropped live instead of deciding again."""
    reader = LogReader(settings, [topic], client_id=client_id)
    refused: set[tuple[str, int, int]] = set()
    try:
        try:
            await reader.start(metadata_timeout=0)
        except TimeoutError:  # no dead-letter topic: nothing was refused
            return refused
        async for batch in reader.read_range({}, await reader.end_offsets()):
            for record in batch:
                body = read_dead_letter(record.value) if record.value is not None else {}
                if body.get("service") == producer:
                    source = body["source"]
                    refused.add((source["topic"], source["partition"], source["offset"]))
    finally:
        await reader.stop()
    return refused
