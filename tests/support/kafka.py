"""Test helpers that talk to the real broker: raw producing and reading back whole topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import TypeVar

from aiokafka import AIOKafkaProducer

from virga_eventlog import KafkaSettings, LogReader, RawRecord
from virga_events import Envelope, EventRegistry, decode, encode
from virga_runtime.runner import ServiceRunner

S = TypeVar("S")


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


@asynccontextmanager
async def following(
    settings: KafkaSettings, topic: str, client_id: str
) -> AsyncIterator[list[Envelope]]:
    """A list that fills with `topic`'s committed events, from now on, while the block runs."""
    events: list[Envelope] = []
    reader = LogReader(settings, [topic], client_id=client_id)
    await reader.start()

    async def follow() -> None:
        while True:
            for record in await reader.read(timeout_ms=100):
                assert record.value is not None
                events.append(decode(record.value))

    follower = asyncio.create_task(follow())
    try:
        yield events
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        await reader.stop()


@asynccontextmanager
async def serving(runner: ServiceRunner[S], *, snapshot: bool = True) -> AsyncIterator[None]:
    """Run `runner` until the block ends, ready first; ``snapshot=False`` stops it as a crash
    would (no final snapshot)."""
    await runner.start()
    task = asyncio.create_task(runner.serve())
    try:
        await asyncio.wait_for(runner.ready.wait(), 30)
        yield
    finally:
        runner.request_stop()
        await task
        await runner.close(snapshot=snapshot)
