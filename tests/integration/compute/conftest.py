"""Fixtures of the compute agent's integration tests: hypervisors and the log around the agent."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import libvirt
import pytest
from aiokafka import AIOKafkaProducer
from tests.integration.compute.agent_harness import (
    TEST_URI,
    Cloud,
    Hypervisor,
    LibvirtHypervisor,
    MemoryHypervisor,
    remove_virga_domains,
)
from tests.support.kafka import following

from virga_eventlog import (
    KafkaSettings,
    ensure_topics,
    event_topic,
    virga_topics,
)


@pytest.fixture
def libvirt_host(tmp_path: Path) -> Iterator[LibvirtHypervisor]:
    # One test hypervisor per process, shared by every connection: start and end clean.
    side = libvirt.open(TEST_URI)
    try:
        remove_virga_domains(side)
        yield LibvirtHypervisor(side, tmp_path)
        remove_virga_domains(side)
    finally:
        side.close()


@pytest.fixture
def memory_host() -> MemoryHypervisor:
    return MemoryHypervisor()


@pytest.fixture(params=["memory", "libvirt"])
def any_host(request: pytest.FixtureRequest) -> Hypervisor:
    host: Hypervisor = request.getfixturevalue(f"{request.param}_host")
    return host


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    namespace = f"compute-{uuid.uuid4().hex[:10]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        topic = event_topic("compute", namespace)
        async with following(settings, topic, client_id=namespace) as events:
            yield Cloud(settings, producer, compute=events)
    finally:
        await producer.stop()
