"""The local Kafka broker of `python -m virga_devstack kafka`: lifecycle, data, transactions."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from tests.support.ports import free_port

from virga_devstack.kafka import KafkaBroker
from virga_devstack.kafka_jars import KafkaBrokerError


def _broker(state_root: Path) -> KafkaBroker:
    return KafkaBroker(free_port(), controller_port=free_port(), state_root=state_root)


def _cli(broker: KafkaBroker, command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            *(sys.executable, "-m", "virga_devstack", "kafka", command),
            *("--port", str(broker.port), "--controller-port", str(broker.controller_port)),
        ],
        env={**os.environ, "VIRGA_STATE_DIR": str(broker.directory.parent)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
    except OSError:
        return False
    return True


async def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=b"aggregate-1")
    finally:
        await producer.stop()


async def _consume_one(bootstrap: str, topic: str) -> bytes:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            record = await consumer.getone()
    finally:
        await consumer.stop()
    value: bytes = record.value
    return value


async def _topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics: list[str] = await admin.list_topics()
    finally:
        await admin.close()
    return set(topics)


@pytest.mark.kafka
def test_start_is_idempotent_serves_records_and_stop_ends_the_process(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    try:
        assert broker.start() is True
        pid = broker.pid()
        assert pid is not None
        assert broker.is_running()
        assert _cli(broker, "status").returncode == 0

        assert broker.start() is False
        assert broker.pid() == pid
        started_elsewhere = _cli(broker, "start")
        assert started_elsewhere.returncode == 0
        assert "already running" in started_elsewhere.stdout
        assert broker.pid() == pid

        topic = f"devstack-{uuid.uuid4().hex}"
        asyncio.run(_produce(broker.bootstrap_servers, topic, b"InstanceRequested"))
        assert asyncio.run(_consume_one(broker.bootstrap_servers, topic)) == b"InstanceRequested"

        assert broker.stop() is True
        assert not Path(f"/proc/{pid}").exists()
        assert not _port_open(broker.port)
        assert not _port_open(broker.controller_port)
        assert not broker.pid_file.exists()
        assert _cli(broker, "status").returncode != 0
        assert broker.stop() is False
    finally:
        broker.stop()


@pytest.mark.kafka
def test_records_survive_a_restart_and_fresh_start_wipes_them(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    topic = f"devstack-{uuid.uuid4().hex}"
    try:
        broker.start()
        asyncio.run(_produce(broker.bootstrap_servers, topic, b"VolumeCreated"))
        assert _cli(broker, "stop").returncode == 0
        assert broker.pid() is None

        broker.start()
        assert asyncio.run(_consume_one(broker.bootstrap_servers, topic)) == b"VolumeCreated"

        broker.start(fresh=True)
        assert topic not in asyncio.run(_topics(broker.bootstrap_servers))
    finally:
        broker.stop()


def test_start_refuses_a_port_another_process_listens_on(tmp_path: Path) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        broker = KafkaBroker(
            stranger.getsockname()[1], controller_port=free_port(), state_root=tmp_path
        )
        with pytest.raises(KafkaBrokerError, match="already in use"):
            broker.start()
    assert broker.pid() is None


@pytest.mark.kafka
async def test_session_broker_commits_transactions(kafka_bootstrap: str) -> None:
    topic = f"devstack-{uuid.uuid4().hex}"
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"devstack-test-{uuid.uuid4().hex}"
    )
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send_and_wait(topic, b"InstanceScheduled", key=b"instance-1")
    finally:
        await producer.stop()
    assert await _consume_one(kafka_bootstrap, topic) == b"InstanceScheduled"
