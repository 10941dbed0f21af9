"""`verify`: every producer's hash chain in a namespace, checked in one streaming pass."""

from __future__ import annotations

from virga_audit.chain import ChainChecker, RecordLocation, VerifyReport
from virga_audit.log import event_topics, read_topics
from virga_eventlog import KafkaSettings


async def verify(settings: KafkaSettings, checker: ChainChecker | None = None) -> VerifyReport:
    """Read every event topic of `settings.namespace` and check each producer's chain."""
    checker = checker if checker is not None else ChainChecker()
    async for batch in read_topics(settings, await event_topics(settings)):
        for record in batch:
            checker.add(RecordLocation(record.topic, record.partition, record.offset), record.value)
    return checker.report()
