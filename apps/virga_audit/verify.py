"""`verify`: every producer's hash chain in a namespace, checked in one streaming pass."""

from __future__ import annotations

from virga_audit.chain import ChainChecker, RecordLocation, VerifyReport
from virga_audit.log import event_topics, read_topics
from virga_eventlog import KafkaSettings

FETCH_BYTES = 16 * 1024
"""What one fetch brings of a partition at most: a producer's records ahead of its head are
about one fetch of each of its partitions, so this bounds what the checker holds."""


async def verify(settings: KafkaSettings, checker: ChainChecker | None = None) -> VerifyReport:
    """Read every event topic of `settings.namespace` and check each producer's chain."""
    checker = checker if checker is not None else ChainChecker()
    topics = await event_topics(settings)
    async for batch in read_topics(settings, topics, partition_fetch_bytes=FETCH_BYTES):
        for record in batch:
            checker.add(RecordLocation(record.topic, record.partition, record.offset), record.value)
    return checker.report()
