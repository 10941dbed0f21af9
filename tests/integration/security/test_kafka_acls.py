"""Kafka with security on: one SCRAM identity per service, and ACLs from topic ownership.

Every test provisions its own namespace on the secure broker (topics and `virga_acls`, as the
super user) and then acts as the services' users.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import ssl
import subprocess
import sys
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
from tests.support.kafka import serving

from virga_audit.verify import verify
from virga_devstack.kafka_security import ADMIN, SecureKafkaBroker
from virga_eventlog import (
    SERVICES,
    ChainHead,
    EventWriter,
    KafkaSettings,
    LogReader,
    dead_letter_topic,
    event_topic,
    snapshot_topic,
)
from virga_eventlog.acls import AUDITOR, CONSUMES, host_user, virga_acls
from virga_eventlog.topics import host_topic
from virga_eventlog.writer import GENESIS
from virga_events import Event, decode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import HostHeartbeat, HostRegistered
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime import RunnerConfig, ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition

pytestmark = pytest.mark.kafka


@pytest.fixture
async def namespace(secure_broker: SecureKafkaBroker) -> str:
    name = f"sec{uuid.uuid4().hex[:8]}"
    await secure_broker.provision(name)
    return name


async def read_values(settings: KafkaSettings, topic: str, at_least: int = 0) -> list[bytes]:
    """Every committed value of `topic`; waits for `at_least` of them, as a commit becomes
    readable a moment after the producer's commit returns (the markers are written then)."""
    async with (
        LogReader(settings, [topic], client_id="test-auditor") as reader,
        asyncio.timeout(10),
    ):
        while True:
            ends = await reader.end_offsets()
            values: list[bytes] = []
            async for batch in reader.read_range({}, ends):
                values.extend(r.value for r in batch if r.value is not None)
            if len(values) >= at_least:
                return values
            await asyncio.sleep(0.05)


async def test_each_service_writes_its_own_event_snapshot_and_dead_letter_topics(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    await secure_broker.add_host("h1", namespace)
    for service in SERVICES:
        # The runner's transactional id (and consumer group): an agent's is its host's, under
        # its host's user, with its host's event and snapshot topics.
        agent = service == "compute"
        user = host_user(service, "h1") if agent else service
        settings = secure_broker.settings(user, namespace)
        txn_id = f"{namespace}-{service}" + ("-h1" if agent else "")
        snapshots = snapshot_topic(service, namespace, "h1" if agent else "")
        events = event_topic(service, namespace)
        writer = EventWriter(settings, transactional_id=txn_id)
        async with writer, writer.transaction() as txn:
            await txn.append_raw(
                host_topic(events, "h1") if agent else events, b"k", service.encode()
            )
            await txn.append_raw(snapshots, b"k", b"snap")
            await txn.append_raw(dead_letter_topic(service, namespace), b"k", b"undecodable")
    auditor = secure_broker.settings(AUDITOR, namespace)
    for service in SERVICES:
        events = event_topic(service, namespace)
        own_topic = host_topic(events, "h1") if service == "compute" else events
        own = await read_values(auditor, own_topic, at_least=1)
        assert own == [service.encode()]
        snapshots = snapshot_topic(service, namespace, "h1" if service == "compute" else "")
        assert await read_values(auditor, snapshots, 1) == [b"snap"]
        dead = await read_values(auditor, dead_letter_topic(service, namespace), 1)
        assert dead == [b"undecodable"]


async def test_no_service_can_write_another_services_topic(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    await secure_broker.add_host("h1", namespace)
    for service in SERVICES:
        user = host_user(service, "h1") if service == "compute" else service
        settings = secure_broker.settings(user, namespace)
        producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all")
        await producer.start()
        try:
            for other in SERVICES:
                if other == service:
                    continue
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(event_topic(other, namespace), b"forged")
        finally:
            await producer.stop()
    # Nothing forged reached any topic.
    auditor = secure_broker.settings(AUDITOR, namespace)
    for service in SERVICES:
        assert await read_values(auditor, event_topic(service, namespace)) == []


async def test_the_auditor_reads_everything_and_writes_nothing(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    settings = secure_broker.settings(AUDITOR, namespace)
    producer = AIOKafkaProducer(**settings.client_kwargs())
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(event_topic("billing", namespace), b"forged")
    finally:
        await producer.stop()
    assert await read_values(settings, event_topic("billing", namespace)) == []


async def test_a_service_reads_only_the_topics_it_consumes(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    unread = [s for s in SERVICES if s not in CONSUMES["scheduler"] and s != "scheduler"]
    assert unread  # e.g. billing's invoices are none of the scheduler's business
    settings = secure_broker.settings("scheduler", namespace)
    reader = LogReader(settings, [event_topic(unread[0], namespace)], client_id="test-nosy")
    with pytest.raises((TopicAuthorizationFailedError, TimeoutError)):
        await reader.start(metadata_timeout=2)
    await reader.stop()
    for owner in CONSUMES["scheduler"]:
        assert await read_values(settings, event_topic(owner, namespace)) == []


async def test_another_services_transactional_id_is_refused(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    # Taking the scheduler's transactional id would fence the real scheduler: denied.
    settings = secure_broker.settings("storage", namespace)
    writer = EventWriter(settings, transactional_id=f"{namespace}-scheduler")
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await writer.start()
    await writer.stop()


@pytest.mark.parametrize(
    ("user", "password"), [("scheduler", "not-its-password"), ("mallory", "whatever")]
)
async def test_a_wrong_password_or_unknown_user_cannot_connect(
    secure_broker: SecureKafkaBroker, user: str, password: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = secure_broker.settings("scheduler").as_user(user, password)
    producer = AIOKafkaProducer(**settings.client_kwargs(), request_timeout_ms=5000)
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert "Authentication failed" in caplog.text
    assert "invalid credentials" in caplog.text


# aiokafka drops the transport of a connection the broker cut during the TLS handshake
# without closing it: collected here, its ResourceWarning stays with the test that caused it.
DROPPED_TRANSPORT = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@DROPPED_TRANSPORT
async def test_without_sasl_the_broker_serves_nothing(secure_broker: SecureKafkaBroker) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=secure_broker.bootstrap_servers, request_timeout_ms=3000
    )
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    gc.collect()


@DROPPED_TRANSPORT
@pytest.mark.parametrize("client", ["untrusting", "cleartext"])
async def test_only_tls_with_the_brokers_ca_connects(
    secure_broker: SecureKafkaBroker, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Right user, right password: a client that trusts only the system's CAs fails the
    certificate check, and SASL without TLS gets no answer it can use."""
    settings = secure_broker.settings("scheduler")
    security = dict(settings.security)
    if client == "untrusting":
        security["ssl_context"] = ssl.create_default_context()
    else:
        del security["ssl_context"]
        security["security_protocol"] = "SASL_PLAINTEXT"
    producer = AIOKafkaProducer(
        **dataclasses.replace(settings, security=security).client_kwargs(),
        request_timeout_ms=3000,
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    gc.collect()
    if client == "untrusting":
        assert "CERTIFICATE_VERIFY_FAILED" in caplog.text


async def test_the_scheduler_runs_end_to_end_as_its_own_user(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """Rebuild (snapshot topic, committed group offsets), decide in transactions with input
    offsets, snapshot at stop: all as user `scheduler`; hosts and requests written as
    `compute` and `gateway`."""
    flavor = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=10)

    heads: dict[str, ChainHead] = {}
    await secure_broker.add_host("h1", namespace)

    async def write(service: str, txn_id: str, payload: Event, aggregate: str) -> None:
        user = host_user(service, "h1") if service == "compute" else service
        settings = secure_broker.settings(user, namespace)
        # Each write is a new producer session that carries on its producer's hash chain.
        writer = EventWriter(settings, transactional_id=txn_id, head=heads.get(service, GENESIS))
        async with writer:
            async with writer.transaction() as txn:
                envelope = new_event(
                    payload,
                    aggregate_id=aggregate,
                    tenant_id="t-1",
                    producer="compute@h1" if service == "compute" else service,
                )
                topic = event_topic(service, namespace)
                await txn.append(
                    host_topic(topic, "h1") if service == "compute" else topic, envelope
                )
            heads[service] = writer.head

    await write(
        "compute",
        f"{namespace}-compute-h1",
        HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=8192, disk_gb=100),
        "h1",
    )
    await write("compute", f"{namespace}-compute-h1", HostHeartbeat(running=0), "h1")
    config = SchedulerConfig(namespace=namespace, heartbeat_timeout_seconds=600)
    scheduler = secure_broker.settings("scheduler", namespace)
    auditor = secure_broker.settings(AUDITOR, namespace)
    topic = event_topic("scheduler", namespace)

    async def placements() -> list[str]:
        events = [decode(v) for v in await read_values(auditor, topic)]
        return [e.aggregate_id for e in events if isinstance(e.payload, InstanceScheduled)]

    async def wait_placed(count: int) -> list[str]:
        async with asyncio.timeout(30):
            while len(placed := await placements()) < count:  # noqa: ASYNC110 (polls the log)
                await asyncio.sleep(0.2)
        return sorted(placed)

    for round_, instance in enumerate(("i1", "i2"), start=1):
        # The second round rebuilds from the first one's snapshot and committed offsets.
        runner = ServiceRunner(definition(config), scheduler, RunnerConfig())
        async with serving(runner):
            await write(
                "gateway",
                f"{namespace}-gateway",
                InstanceRequested(name=instance, flavor=flavor),
                instance,
            )
            assert await wait_placed(round_) == ["i1", "i2"][:round_]
    assert sorted(await placements()) == ["i1", "i2"]  # nothing decided twice across the restart
    admin = secure_broker.settings(ADMIN, namespace)
    assert len(await read_values(admin, snapshot_topic("scheduler", namespace), 2)) >= 2
    # `virga audit verify` as the read-only auditor: every chain of the namespace intact.
    report = await verify(auditor)
    assert report.ok, report.problems
    assert {p.producer for p in report.producers} >= {"scheduler", "gateway", "compute@h1"}


def test_an_operator_provisions_a_namespace_from_the_command_line(
    secure_broker: SecureKafkaBroker,
) -> None:
    namespace = f"ops{uuid.uuid4().hex[:8]}"
    env = {**os.environ, **secure_broker.environment(ADMIN), "VIRGA_NAMESPACE": namespace}
    done = subprocess.run(
        [sys.executable, "-m", "virga_eventlog.provision", "--partitions", "2"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    acls = len(virga_acls(namespace))
    assert done.stdout.strip() == f"namespace {namespace}: 18 topics created, {acls} ACLs in force"

    async def billing_writes_its_topic() -> list[bytes]:
        settings = secure_broker.settings("billing", namespace)
        writer = EventWriter(settings, transactional_id=f"{namespace}-billing")
        async with writer, writer.transaction() as txn:
            await txn.append_raw(event_topic("billing", namespace), b"k", b"invoice")
        auditor = secure_broker.settings(AUDITOR, namespace)
        return await read_values(auditor, f"{namespace}.billing", at_least=1)

    assert asyncio.run(billing_writes_its_topic()) == [b"invoice"]
