"""The transactional writer against the real broker: atomic commits, fencing, the hash chain."""

from __future__ import annotations

import asyncio
import itertools
import uuid

import pytest
from aiokafka.errors import KafkaError
from tests.support import counter
from tests.support.kafka import read_all

from virga_eventlog import EventWriter, KafkaSettings, TopicSpec, ensure_topics
from virga_events import Envelope, decode, new_event, record_hash

pytestmark = pytest.mark.kafka


def increment(key: str = "k") -> Envelope:
    return new_event(
        counter.Incremented(key=key, amount=1),
        aggregate_id=key,
        tenant_id=None,
        producer="writer-test",
    )


async def fresh_topic(bootstrap: str) -> str:
    topic = f"writer-{uuid.uuid4().hex[:8]}"
    await ensure_topics(KafkaSettings(bootstrap_servers=bootstrap), [TopicSpec(topic, 2)])
    return topic


async def test_a_stale_writer_is_fenced_and_its_writes_never_become_visible(
    kafka_bootstrap: str,
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = await fresh_topic(kafka_bootstrap)
    txn_id = f"fence-{uuid.uuid4().hex[:8]}"
    stale = EventWriter(settings, transactional_id=txn_id)
    await stale.start()
    fresh = EventWriter(settings, transactional_id=txn_id)

    async def stale_transaction() -> None:
        async with stale.transaction() as txn:
            await txn.append(topic, increment("a"))
            await fresh.start()  # the new instance fences the old one mid-transaction
            await txn.append(topic, increment("b"))

    try:
        with pytest.raises(KafkaError) as raised:
            await stale_transaction()
        assert "Fenced" in type(raised.value).__name__ or "fenced" in str(raised.value).lower()
        async with fresh.transaction() as txn:
            await txn.append(topic, increment("c"))
    finally:
        await stale.stop()
        await fresh.stop()
    # The coordinator writes the stale transaction's abort marker asynchronously; until then
    # the last stable offset holds read_committed readers before it. Wait for it to move.
    committed: list[Envelope] = []
    for _ in range(100):
        records = await read_all(kafka_bootstrap, topic)
        committed = [decode(r.value, counter.REGISTRY) for r in records if r.value]
        if committed:
            break
        await asyncio.sleep(0.1)
    assert [e.aggregate_id for e in committed] == ["c"]


async def test_events_are_chained_by_sequence_and_hash_of_the_previous_record(
    kafka_bootstrap: str,
) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = await fresh_topic(kafka_bootstrap)
    async with EventWriter(settings, transactional_id=f"chain-{uuid.uuid4().hex[:8]}") as writer:
        for batch in range(3):
            async with writer.transaction() as txn:
                for i in range(4):
                    await txn.append(topic, increment(f"k{batch}{i}"))
        assert writer.head.seq == 12
    records = [r for r in await read_all(kafka_bootstrap, topic) if r.value]
    by_seq = sorted(
        ((decode(r.value, counter.REGISTRY), r.value) for r in records if r.value),
        key=lambda pair: pair[0].seq,
    )
    assert [e.seq for e, _ in by_seq] == list(range(1, 13))
    assert by_seq[0][0].prev_hash == ""
    for (_, previous_value), (event, _) in itertools.pairwise(by_seq):
        assert event.prev_hash == record_hash(previous_value)


async def test_an_aborted_transaction_does_not_advance_the_chain(kafka_bootstrap: str) -> None:
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap)
    topic = await fresh_topic(kafka_bootstrap)
    async with EventWriter(settings, transactional_id=f"abort-{uuid.uuid4().hex[:8]}") as writer:

        async def failing_transaction() -> None:
            async with writer.transaction() as txn:
                await txn.append(topic, increment())
                raise RuntimeError("decide failed")

        with pytest.raises(RuntimeError):
            await failing_transaction()
        assert writer.head.seq == 0
        async with writer.transaction() as txn:
            chained = await txn.append(topic, increment())
        assert chained.seq == 1
    assert len([r for r in await read_all(kafka_bootstrap, topic) if r.value]) == 1
