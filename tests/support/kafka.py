"""Test helpers that talk to the real broker: raw producing and reading back whole topics, and
a local cluster of several brokers for a test module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaConnectionError, NodeNotReadyError
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from tests.support import hang_report
from virga_devstack.kafka_cluster import KafkaCluster
from virga_devstack.kafka_jars import KafkaBrokerError
from virga_eventlog import KafkaSettings, LogReader, RawRecord
from virga_eventlog.topics import AGENT_SERVICES, agent_families
from virga_events import Envelope, EventRegistry, decode, encode
from virga_runtime.runner import ServiceRunner

S = TypeVar("S")
LEADER_NOT_AVAILABLE = 5
NOT_LEADER_OR_FOLLOWER = 6


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
    """Every record of `topic` up to its current end, in partition then offset order; of
    `<ns>.compute` and `<ns>.network`, those of every host's topic too."""
    settings = KafkaSettings(bootstrap_servers=bootstrap)
    families = [topic] if topic.rpartition(".")[2] in AGENT_SERVICES else []
    async with LogReader(
        settings, [topic], client_id="test-reader", read_committed=committed, families=families
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
    """A list that fills with `topic`'s committed events, from now on, while the block runs;
    of `<ns>.compute` and `<ns>.network`, every host's topic's too (those made later too)."""
    events: list[Envelope] = []
    families = [t for t in agent_families(settings.namespace) if t == topic]
    reader = LogReader(settings, [topic], client_id=client_id, families=families)
    await reader.start()

    async def follow() -> None:
        while True:
            for _ in range(5):
                for record in await reader.read(timeout_ms=100):
                    assert record.value is not None
                    events.append(decode(record.value))
            await reader.refresh()

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
        await stop_serving(runner, task, snapshot=snapshot)


SERVE_STOP_SECONDS = 30.0


async def stop_serving(
    runner: ServiceRunner[S], task: asyncio.Task[None], *, snapshot: bool = True
) -> None:
    """Stop `runner` serving in `task`, then close it. A serve loop still busy after
    `SERVE_STOP_SECONDS` (its batch's commit never ends) is killed as a service manager
    would: its stacks are printed, its task is cancelled, and it closes as after a crash."""
    runner.request_stop()
    if not (await asyncio.wait({task}, timeout=SERVE_STOP_SECONDS))[0]:
        hang_report.note(f"{runner.producer_name} still serving {SERVE_STOP_SECONDS} s after stop")
        task.cancel()
        await asyncio.wait({task}, timeout=5.0)
        snapshot = False
    elif (error := task.exception()) is not None:
        raise error
    await runner.close(snapshot=snapshot)


@contextmanager
def running_cluster(
    port: int, brokers: int = 3, *, dedicated_controller: bool = False
) -> Iterator[KafkaCluster]:
    """A fresh local cluster (`KafkaCluster`) on ports from `port` for the block; stopped after
    it, every node. Fails the test with the nodes' logs if it cannot start."""
    cluster = KafkaCluster(brokers, port, dedicated_controller=dedicated_controller)
    failure = ""
    try:
        cluster.start(fresh=True)
    except KafkaBrokerError as error:
        failure = str(error)  # reported outside the handler, without a chained traceback
    if failure:
        pytest.fail(f"the Kafka cluster did not start: {failure}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.stop()


async def produce_once(
    cluster: KafkaCluster, topic: str, key: bytes, value: bytes, partition: int = 0
) -> int:
    """One produce request with ``acks=all`` to the partition's leader, not retried once a
    leader took it (a producer retries NotEnoughReplicas for ever): the broker's error code,
    0 if written. Asked again of the new leader while leadership moves (nothing appended)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=0,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=None, key=key, value=value, headers=[])
    request = ProduceRequest(
        transactional_id=None,
        required_acks=-1,
        timeout=10_000,
        topics=[(topic, [(partition, bytes(builder.build()))])],
    )
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        leader = await cluster.leader(topic, partition)
        client = AIOKafkaClient(bootstrap_servers=leader.bootstrap_servers)
        try:
            await client.bootstrap()
            response = await client.send(leader.node_id, request)
            ((_, partitions),) = response.topics
            ((_, error_code, *_),) = partitions
        except (NodeNotReadyError, KafkaConnectionError):
            error_code = LEADER_NOT_AVAILABLE
        finally:
            await client.close()
        moving = error_code in (LEADER_NOT_AVAILABLE, NOT_LEADER_OR_FOLLOWER)
        if not moving or asyncio.get_running_loop().time() > deadline:
            return int(error_code)
        await asyncio.sleep(0.2)
