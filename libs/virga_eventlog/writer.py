"""The one way a service appends: a transactional, idempotent producer that hash-chains events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, NamedTuple

import aiokafka.producer.sender
from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from virga_eventlog.records import Positions
from virga_eventlog.settings import KafkaSettings
from virga_eventlog.stopping import stop_within
from virga_events import Envelope, encode, record_hash


class ChainHead(NamedTuple):
    """Where a producer's hash chain stands: its last sequence number and record hash."""

    seq: int
    """Sequence number of the producer's last committed event (0: none yet)."""
    hash: str
    """sha256 of that event's record bytes ("" before the first)."""


GENESIS = ChainHead(0, "")
"""The head of a producer that has written nothing yet."""


CONCURRENT_TRANSACTIONS_BACKOFF = 0.005
"""Seconds before retrying a transaction's first AddPartitionsToTxn that the broker refused
with CONCURRENT_TRANSACTIONS: it still writes the previous transaction's commit markers, which
takes it a few milliseconds (KAFKA-5477). A service under load opens its next transaction right
away, so it pays this wait on nearly every one; aiokafka's fixed 20 ms made it the largest part
of a hop between services. aiokafka has no setting for it, hence the module constant."""

if not hasattr(aiokafka.producer.sender, "BACKOFF_OVERRIDE"):  # pragma: no cover
    raise ImportError("aiokafka.producer.sender.BACKOFF_OVERRIDE is gone: revisit the writer")
aiokafka.producer.sender.BACKOFF_OVERRIDE = CONCURRENT_TRANSACTIONS_BACKOFF

SENDER_STOP_SECONDS = 1.0
"""How long `EventWriter.discard` waits for a cancelled sender before closing its connections."""


class ProducerAbandoned(Exception):
    """A producer's stop did not end well within its bound; it was dropped all the same."""


class Transaction:
    """Records sent inside one Kafka transaction; visible to readers only once it commits."""

    def __init__(self, producer: AIOKafkaProducer, head: ChainHead) -> None:
        self._producer = producer
        self._pending: list[asyncio.Future[Any]] = []
        self.head = head
        self.appended: list[Envelope] = []
        self.delivered: list[RecordMetadata] = []
        """Where each record landed, filled in once the transaction's records are delivered."""

    async def append(self, topic: str, envelope: Envelope) -> Envelope:
        """Chain `envelope` after the producer's previous event and send it; return it chained."""
        chained = envelope.chained(self.head.seq + 1, self.head.hash)
        value = encode(chained)
        await self._send(topic, chained.aggregate_id.encode(), value)
        self.head = ChainHead(chained.seq, record_hash(value))
        self.appended.append(chained)
        return chained

    async def append_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        """Send a record that is not an event (dead letters, snapshot chunks)."""
        await self._send(topic, key, value)

    @property
    def empty(self) -> bool:
        """Nothing was sent yet: committing now costs no round trip to the broker."""
        return not self._pending

    async def commit_offsets(self, positions: Positions, group_id: str) -> None:
        """Mark input `positions` consumed, atomically with this transaction's records."""
        if positions:
            await self._producer.send_offsets_to_transaction(dict(positions), group_id)

    async def _send(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self._pending.append(await self._producer.send(topic, key=key, value=value))

    async def _delivered(self) -> None:
        if self._pending:
            self.delivered = list(await asyncio.gather(*self._pending))


class EventWriter:
    """Transactional producer with a stable `transactional_id` per service instance.

    Starting a second writer with the same id fences the first: its next transactional call
    raises `ProducerFenced` and none of its open transaction becomes visible under
    read_committed. The chain head only advances when a transaction commits.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        transactional_id: str,
        head: ChainHead = GENESIS,
    ) -> None:
        self.transactional_id = transactional_id
        self.head = head
        self._producer = AIOKafkaProducer(
            **settings.client_kwargs(),
            client_id=f"{settings.client_id}-{transactional_id}",
            transactional_id=transactional_id,
            enable_idempotence=True,
            acks="all",
            compression_type="lz4",
            linger_ms=2,
            # The other transactional requests (AddOffsetsToTxn, EndTxn) retry CONCURRENT_
            # TRANSACTIONS after this general backoff: 100 ms by default, which a fifth of the
            # agents' batches paid under load (see CONCURRENT_TRANSACTIONS_BACKOFF).
            retry_backoff_ms=5,
            max_batch_size=512 * 1024,
            max_request_size=16 * 1024 * 1024,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def stop(self) -> None:
        await self._producer.stop()

    async def discard(self, seconds: float) -> None:
        """Stop a producer that may be fenced or cut off from the log, waiting on it at most
        `seconds`: its open transaction is the broker's to finish or abort (a newer
        producer with the same transactional id makes it do so). Whatever happens, its sender
        ends and its connections close (once cancelled, aiokafka's sender still awaits its
        requests in flight, which an absent log never answers: it gets `SENDER_STOP_SECONDS`)."""
        producer = self._producer
        failure = await stop_within(producer.stop(), seconds)
        if failure is None:
            return
        sender = producer._sender.sender_task
        if sender is not None:
            sender.cancel()
            await asyncio.wait({sender}, timeout=SENDER_STOP_SECONDS)
        await producer.client.close()
        raise ProducerAbandoned(failure)

    async def __aenter__(self) -> EventWriter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Send everything in the block atomically; an exception aborts it all."""
        async with self._producer.transaction():
            txn = Transaction(self._producer, self.head)
            yield txn
            await txn._delivered()
        self.head = txn.head
