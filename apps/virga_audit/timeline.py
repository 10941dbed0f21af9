"""A namespace's event topics read in event time, in bounded memory: what `check` folds.

Two passes over the same records (every partition from its start to its end when the read
began, read_committed as `log.read_topics`): the first decodes only each record's event time,
to measure how far each partition goes back in time (`merge`'s disorder); the second decodes
the records and merges them with `merge.EventTimeMerge`, pausing a partition that gets more
than the merge's window ahead of the slowest one until the others catch up. Pausing drops
what the consumer had fetched ahead for the partition (it is fetched again on resume), so
fetches are kept small.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from datetime import datetime, timedelta

import msgspec
from aiokafka import TopicPartition

from virga_audit.merge import EventTimeMerge, Partition
from virga_eventlog import KafkaSettings, LogReader, Positions
from virga_eventlog.topics import agent_families
from virga_events import REGISTRY, Envelope, EventDecodeError, decode

FETCH_BYTES = 16 * 1024
"""What one fetch brings of a partition at most."""

READ_RECORDS = 2_000
"""Records taken from the consumer per round (the consumer fetches ahead beyond a fetch)."""


class _Stamp(msgspec.Struct):
    occurred_at: datetime


_STAMP = msgspec.json.Decoder(_Stamp)


async def disorder(
    reader: LogReader, ends: Positions
) -> dict[Partition, tuple[datetime, timedelta]]:
    """For each partition with an event: the first event's time, and the most a record's
    event time is older than the newest before it (zero for a partition in event-time order).
    Records that do not decode count for nothing."""
    newest: dict[Partition, datetime] = {}
    found: dict[Partition, tuple[datetime, timedelta]] = {}
    async for batch in reader.read_range({}, ends):
        for record in batch:
            try:
                at = _STAMP.decode(record.value or b"").occurred_at
            except (msgspec.ValidationError, msgspec.DecodeError):
                continue
            where = (record.topic, record.partition)
            before = newest.get(where)
            if before is None:
                newest[where] = at
                found[where] = (at, timedelta(0))
            elif at > before:
                newest[where] = at
            elif before - at > found[where][1]:
                found[where] = (found[where][0], before - at)
    return found


async def in_event_time(
    settings: KafkaSettings,
    topics: Iterable[str],
    keep: Callable[[Envelope], bool],
    merge: EventTimeMerge,
) -> AsyncIterator[list[Envelope]]:
    """Batches of the events of `topics` (with every host's topic of `<ns>.compute` and
    `<ns>.network`) that `keep` accepts, in event time (then producer, then seq), up to the
    topics' ends at the start; undecodable records are skipped (they are `verify`'s)."""
    wanted = list(topics)
    if not wanted:
        return
    families = [t for t in agent_families(settings.namespace) if t in wanted]
    async with LogReader(
        settings,
        wanted,
        client_id=f"{settings.client_id}-audit",
        families=families,
        partition_fetch_bytes=FETCH_BYTES,
    ) as reader:
        async for batch in _merged(reader, keep, merge):
            yield batch


async def _merged(
    reader: LogReader, keep: Callable[[Envelope], bool], merge: EventTimeMerge
) -> AsyncIterator[list[Envelope]]:
    ends = {tp: end for tp, end in (await reader.end_offsets()).items() if end > 0}
    for (topic, partition), (first, back) in (await disorder(reader, ends)).items():
        merge.open((topic, partition), first, back)
    reader.pause([tp for tp in reader.partitions() if tp not in ends])
    reader.seek({})
    pending = set(ends)
    paused: set[TopicPartition] = set()
    while pending:
        ahead = {TopicPartition(*p) for p in merge.ahead()} & pending
        reader.resume(paused - ahead)
        reader.pause(ahead - paused)
        paused = ahead
        for record in await reader.read(max_records=READ_RECORDS):
            tp = TopicPartition(record.topic, record.partition)
            if record.offset >= ends.get(tp, 0) or record.value is None:
                continue
            try:
                envelope = decode(record.value, REGISTRY)
            except EventDecodeError:
                continue
            where = (record.topic, record.partition)
            if keep(envelope):
                merge.push(where, envelope)
            else:
                merge.seen(where, envelope.occurred_at)
        for tp in [tp for tp in pending - paused if await reader.position(tp) >= ends[tp]]:
            pending.discard(tp)
            merge.close((tp.topic, tp.partition))
            reader.pause([tp])
        released = merge.release()
        if released:
            yield released
    rest = merge.drain()
    if rest:
        yield rest
