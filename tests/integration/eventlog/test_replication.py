"""Replication on the real (single) broker: topics are created with `min.insync.replicas` and
unclean leader election off, and a service refuses to start, naming them, on topics
replicated less than its settings ask."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from tests.integration.eventlog.test_topics import topic_configs
from tests.support.ports import free_port

from virga_eventlog import KafkaSettings, TopicSpec, ensure_topics, event_topic, virga_topics
from virga_eventlog.replication import Replication, UnderReplicated, check_replication

pytestmark = pytest.mark.kafka


def settings_for(bootstrap: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=bootstrap, namespace=f"rep{uuid.uuid4().hex[:6]}")


async def test_topics_are_created_with_min_insync_and_without_unclean_election(
    kafka_bootstrap: str,
) -> None:
    settings = settings_for(kafka_bootstrap)
    specs = virga_topics(partitions=2, namespace=settings.namespace)
    await ensure_topics(settings, specs)
    configs = await topic_configs(kafka_bootstrap, [s.name for s in specs])
    for spec in specs:
        assert configs[spec.name]["min.insync.replicas"] == "1", spec.name
        assert configs[spec.name]["unclean.leader.election.enable"] == "false", spec.name
    # One broker: the defaults are one copy, one in sync; the topics have what is asked.
    names = [s.name for s in specs]
    assert await check_replication(settings, names) == Replication(1, 1)


async def test_more_copies_than_brokers_cannot_be_created_and_names_the_topics(
    kafka_bootstrap: str,
) -> None:
    settings = replace(settings_for(kafka_bootstrap), replication_factor=3)
    topic = f"{settings.namespace}.api"
    with pytest.raises(UnderReplicated, match=rf"cannot create {topic} with replication factor 3"):
        await ensure_topics(settings, [TopicSpec(topic, 1)])


async def test_a_check_names_every_topic_below_the_setting(kafka_bootstrap: str) -> None:
    settings = settings_for(kafka_bootstrap)
    names = [event_topic(s, settings.namespace) for s in ("gateway", "scheduler")]
    await ensure_topics(settings, [TopicSpec(name, 1) for name in names])
    with pytest.raises(UnderReplicated) as refused:
        await check_replication(replace(settings, replication_factor=3), names)
    message = str(refused.value)
    assert "2 topic(s) below the replication setting" in message
    for name in names:
        assert f"{name}: replication factor 1 < 3, min.insync.replicas 1 < 2" in message


async def test_a_topic_made_elsewhere_with_unclean_election_on_is_refused(
    kafka_bootstrap: str,
) -> None:
    settings = settings_for(kafka_bootstrap)
    name = f"{settings.namespace}.legacy"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, 1, 1, topic_configs={"unclean.leader.election.enable": "true"})]
        )
    finally:
        await admin.close()
    with pytest.raises(UnderReplicated, match=rf"{name}: unclean.leader.election.enable=true"):
        await check_replication(settings, [name])


async def run_scheduler(
    settings: KafkaSettings, log: Path, extra: dict[str, str], *, until_healthy: bool
) -> int:
    """Run `python -m virga_scheduler`; stop it with SIGTERM once healthy (`until_healthy`),
    else wait for it to exit by itself. Its exit code."""
    port = free_port()
    env = {
        **os.environ,
        "VIRGA_KAFKA_BOOTSTRAP": settings.bootstrap_servers,
        "VIRGA_NAMESPACE": settings.namespace,
        "VIRGA_HTTP_PORT": str(port),
        **extra,
    }
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "virga_scheduler", env=env, stdout=out, stderr=out
        )
        try:
            if until_healthy:
                async with aiohttp.ClientSession() as http:
                    for _ in range(300):
                        assert proc.returncode is None, "the scheduler exited before it was healthy"
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                                if response.status == 200:
                                    break
                        except aiohttp.ClientError:
                            pass
                        await asyncio.sleep(0.1)
        finally:
            if until_healthy and proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 60)
    return code


async def test_a_service_refuses_to_start_on_topics_with_fewer_copies_than_its_setting(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    settings = settings_for(kafka_bootstrap)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=settings.namespace))
    log = tmp_path / "scheduler.log"

    extra = {"VIRGA_KAFKA_REPLICATION_FACTOR": "3"}
    code = await run_scheduler(settings, log, extra, until_healthy=False)
    output = log.read_text()
    assert code == 1, output[-3000:]
    assert "refusing to start" in output
    ns = settings.namespace
    # Every topic the scheduler uses, and no other.
    for name in (f"{ns}.api", f"{ns}.compute", f"{ns}.scheduler", f"{ns}.snapshots.scheduler"):
        assert f"{name}: replication factor 1 < 3, min.insync.replicas 1 < 2" in output
    assert f"{ns}.billing:" not in output

    # The same topics, with the setting at one copy: it starts, and stops cleanly.
    extra = {"VIRGA_KAFKA_REPLICATION_FACTOR": "1", "VIRGA_KAFKA_MIN_INSYNC_REPLICAS": "1"}
    code = await run_scheduler(settings, log, extra, until_healthy=True)
    assert code == 0, log.read_text()[-3000:]
    lines = [orjson.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    replication = [line for line in lines if line["event"] == "replication"]
    assert replication[0]["factor"] == 1
    assert replication[0]["min_insync"] == 1
    assert "ready" in {line["event"] for line in lines}
