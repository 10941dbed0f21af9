"""No host can write another host's events (issue #13, part 3: the last open item).

On the secure broker: each agent writes only its own host's event topic `<ns>.compute.<host>`
(its user may write no other event topic), and every consumer refuses, dead-letters and never
folds an event in a host's topic that speaks of another host: a heartbeat of another host, an
instance report naming another host, a report on an instance placed on another host.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from tests.support.kafka import serving

from virga_audit.replay import replay_state
from virga_devstack.kafka_security import SecureKafkaBroker
from virga_eventlog import (
    EventWriter,
    KafkaSettings,
    LogReader,
    dead_letter_topic,
    event_topic,
    read_dead_letter,
)
from virga_eventlog.acls import AUDITOR
from virga_eventlog.topics import host_topic
from virga_events import Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import (
    HostHeartbeat,
    HostRegistered,
    InstanceStarted,
    InstanceStopped,
)
from virga_gateway.config import GatewayConfig
from virga_gateway.runner import GatewayRunner
from virga_gateway.service import gateway_runner
from virga_runtime import Emit, RunnerConfig, ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.service import definition as scheduler_definition

pytestmark = pytest.mark.kafka

TOKEN = "virga_test-admin-token-0123456789abcdefghijklmnopqrstuv"
SECRET = b"a test secret, 32 bytes or more, for HMAC-SHA256"


@pytest.fixture
async def namespace(secure_broker: SecureKafkaBroker) -> str:
    """A provisioned namespace with agent hosts h1 and h2 added."""
    name = f"topics{uuid.uuid4().hex[:8]}"
    await secure_broker.provision(name)
    for host in ("h1", "h2"):
        await secure_broker.add_host(host, name)
    return name


async def test_a_hosts_agents_write_only_their_own_hosts_event_topics(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """`compute-h1` writes `<ns>.compute.h1`; not h2's, not the shared `<ns>.compute` every
    consumer reads, not the network controller's or h2's network topic."""
    compute, network = event_topic("compute", namespace), event_topic("network", namespace)
    for user, forbidden in (
        ("compute-h1", (host_topic(compute, "h2"), compute, host_topic(network, "h1"))),
        ("network-h1", (host_topic(network, "h2"), network, host_topic(compute, "h1"))),
    ):
        producer = AIOKafkaProducer(**secure_broker.settings(user, namespace).client_kwargs())
        await producer.start()
        try:
            for topic in forbidden:
                with pytest.raises(TopicAuthorizationFailedError):
                    await producer.send_and_wait(topic, b"forged", key=b"h2")
        finally:
            await producer.stop()
    for service in ("compute", "network"):
        settings = secure_broker.settings(f"{service}-h1", namespace)
        writer = EventWriter(settings, transactional_id=f"{namespace}-{service}-h1")
        async with writer, writer.transaction() as txn:
            own = host_topic(event_topic(service, namespace), "h1")
            await txn.append_raw(own, b"h1", b"own")


class Host:
    """The compute agent of one host, as far as the log can tell: its user, its topic."""

    def __init__(self, broker: SecureKafkaBroker, namespace: str, name: str) -> None:
        self.name = name
        self.topic = host_topic(event_topic("compute", namespace), name)
        settings = broker.settings(f"compute-{name}", namespace)
        self.writer = EventWriter(settings, transactional_id=f"{namespace}-compute-{name}")

    async def write(self, payload: Event, aggregate: str, **envelope: object) -> None:
        """Append one event as `compute@<name>`, into its own topic (the only one it may)."""
        event = new_event(
            payload,
            aggregate_id=aggregate,
            tenant_id=None if payload.__class__.__name__.startswith("Host") else "t-1",
            producer=f"compute@{self.name}",
            **envelope,  # type: ignore[arg-type]
        )
        async with self.writer.transaction() as txn:
            await txn.append(self.topic, event)


async def dead_letters(settings: KafkaSettings, service: str, at_least: int) -> list[str]:
    """The reasons of `service`'s dead letters, once there are `at_least`."""
    topic = dead_letter_topic(service, settings.namespace)
    async with LogReader(settings, [topic], client_id=f"dl-{service}") as reader:
        async with asyncio.timeout(30):
            while True:
                reasons: list[str] = []
                async for batch in reader.read_range({}, await reader.end_offsets()):
                    reasons += [read_dead_letter(r.value)["reason"] for r in batch if r.value]
                if len(reasons) >= at_least:
                    return reasons
                await asyncio.sleep(0.1)


async def until(check: Callable[[], bool]) -> None:
    async with asyncio.timeout(30):
        while not check():  # noqa: ASYNC110 (polls a runner's state)
            await asyncio.sleep(0.05)


async def test_a_host_cannot_make_the_scheduler_or_gateway_fold_an_event_about_another_host(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """h1 writes, in its own topic, a heartbeat of h2 (which would keep a dead h2 `up`) and
    stops of h2's instance (one naming h2, one naming itself): the scheduler and the gateway
    dead-letter each with the reason and fold none; after a rebuild, still none."""
    h1, h2 = Host(secure_broker, namespace, "h1"), Host(secure_broker, namespace, "h2")
    await h1.writer.start()
    await h2.writer.start()
    sched_settings = secure_broker.settings("scheduler", namespace)
    gw_settings = secure_broker.settings("gateway", namespace)
    config = SchedulerConfig(namespace=namespace, heartbeat_timeout_seconds=600)
    gateway = gateway_runner(GatewayConfig(TOKEN, SECRET), gw_settings, RunnerConfig())
    scheduler = ServiceRunner(scheduler_definition(config), sched_settings, RunnerConfig())
    registered_at = datetime.now(UTC) - timedelta(minutes=5)
    try:
        # Stopped as by a crash: the rebuild below folds the whole log, forgeries included.
        async with serving(scheduler, snapshot=False), serving(gateway):
            host = HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=8192, disk_gb=100)
            await h2.write(host, "h2", occurred_at=registered_at)
            await until(lambda: "h2" in scheduler.state.hosts)
            flavor = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=10)
            requested = InstanceRequested(name="i1", flavor=flavor)
            await gateway.append([Emit(requested, "i1", "t-1")])
            await until(lambda: _placed(scheduler, "i1") == "h2")
            await h2.write(InstanceStarted(host="h2"), "i1")
            await until(lambda: _status(gateway, "i1") == "RUNNING")

            forged_at = datetime.now(UTC)
            await h1.write(HostHeartbeat(running=0), "h2", occurred_at=forged_at)
            await h1.write(InstanceStopped(host="h2"), "i1")
            await h1.write(InstanceStopped(host="h1"), "i1")

            scheduler_reasons = await dead_letters(sched_settings, "scheduler", 3)
            gateway_reasons = await dead_letters(gw_settings, "gateway", 3)
            assert scheduler.state.last_seen["h2"] == registered_at
            assert _status(gateway, "i1") == "RUNNING"
            assert _placed(scheduler, "i1") == "h2"
    finally:
        await h1.writer.stop()
        await h2.writer.stop()
    topic = host_topic(event_topic("compute", namespace), "h1")
    expected = [
        f"HostHeartbeat about host h2 in {topic}, the topic of host h1",
        f"InstanceStopped about host h2 in {topic}, the topic of host h1",
        f"InstanceStopped of instance i1, placed on host h2, in {topic}, the topic of host h1",
    ]
    assert scheduler_reasons == expected
    assert gateway_reasons == expected
    # A rebuild from the log (no snapshot) drops them again, the placement's refusal included.
    rebuilt = ServiceRunner(scheduler_definition(config), sched_settings, RunnerConfig())
    async with serving(rebuilt, snapshot=False):
        assert rebuilt.state.last_seen["h2"] == registered_at
        assert _placed(rebuilt, "i1") == "h2"
    # And `virga audit` (as the auditor) reads the hosts' topics as the services do.
    auditor = secure_broker.settings(AUDITOR, namespace)
    replayed = await replay_state(auditor, scheduler_definition(config), datetime.now(UTC))
    assert replayed.last_seen["h2"] == registered_at
    assert "h2" in replayed.hosts


def _placed(runner: ServiceRunner[SchedulerState], instance: str) -> str | None:
    claim = runner.state.claims.get(instance)
    return None if claim is None else claim.host


def _status(runner: GatewayRunner, instance: str) -> str | None:
    record = runner.state.instances.get(instance)
    return None if record is None else record.status


async def test_a_host_added_while_the_services_run_is_read_within_seconds(
    secure_broker: SecureKafkaBroker, namespace: str
) -> None:
    """Its topic appears after the scheduler started: the scheduler finds it (every
    `HOST_TOPICS_SECONDS`) and reads it from its start."""
    settings = secure_broker.settings("scheduler", namespace)
    config = SchedulerConfig(namespace=namespace, heartbeat_timeout_seconds=600)
    scheduler = ServiceRunner(scheduler_definition(config), settings, RunnerConfig())
    async with serving(scheduler):
        await secure_broker.add_host("h3", namespace)
        h3 = Host(secure_broker, namespace, "h3")
        await h3.writer.start()
        try:
            host = HostRegistered(rack="r3", zone="az1", vcpus=4, ram_mb=4096, disk_gb=50)
            await h3.write(host, "h3")
        finally:
            await h3.writer.stop()
        await until(lambda: "h3" in scheduler.state.hosts)
