"""Test helpers that talk to the real broker: raw producing and reading back whole topics."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer

from virga_eventlog import KafkaSettings, LogReader, RawRecord
from virga_events import Envelope, EventRegistry, decode, encode


async def produce_raw(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> None:
    """Write records as any client could: no envelope checks, no chain, no transaction."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=k, value=v) for k, v in records]
        for future in futures:
            await future
    finally:
        await producer.stop()


async def produce_events(bootstrap: str, topic: str, envelopes: Iterable[Envelope]) -> None:
    await produce_raw(bootstrap, topic, ((e.aggregate_id.encode(), encode(e)) for e in envelopes))


async def read_all(bootstrap: str, topic: str, *, committed: bool = True) -> list[RawRecord]:
    """Every record of `topic` up to its current end, in partition then offset order."""
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    async with LogReader(
        settings, [topic], client_id="test-reader", read_committed=committed
    ) as reader:
        ends = await reader.end_offsets()
        records: list[RawRecord] = []
        async for batch in reader.read_range({}, ends):
            records.extend(batch)
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def read_events(bootstrap: str, topic: str, registry: EventRegistry) -> list[Envelope]:
    return [decode(r.value, registry) for r in await read_all(bootstrap, topic) if r.value]
