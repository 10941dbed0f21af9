"""Virga creates its own topics: explicit partitions, event topics kept forever, snapshots
compacted; creating them again changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from virga_eventlog import KafkaSettings, ensure_topics, virga_topics

pytestmark = pytest.mark.kafka


async def topic_configs(bootstrap: str, names: list[str]) -> dict[str, dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        described = await admin.describe_topics(names)
    finally:
        await admin.close()
    configs: dict[str, dict[str, Any]] = {}
    for response in responses:
        for resource in response.to_object()["resources"]:
            entries = {c["config_names"]: c["config_value"] for c in resource["config_entries"]}
            configs[resource["resource_name"]] = entries
    for topic in described:
        configs[topic["topic"]]["partitions"] = len(topic["partitions"])
    return configs


async def test_event_topics_keep_everything_and_snapshot_topics_are_compacted(
    kafka_bootstrap: str,
) -> None:
    namespace = f"topics{uuid.uuid4().hex[:6]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    specs = virga_topics(partitions=4, namespace=namespace)
    created = await ensure_topics(settings, specs)
    assert sorted(created) == sorted(s.name for s in specs)
    assert await ensure_topics(settings, specs) == []  # idempotent

    configs = await topic_configs(kafka_bootstrap, [s.name for s in specs])
    api = configs[f"{namespace}.api"]
    assert api["partitions"] == 4
    assert api["cleanup.policy"] == "delete"
    assert api["retention.ms"] == "-1"
    assert api["retention.bytes"] == "-1"
    snapshots = configs[f"{namespace}.snapshots.scheduler"]
    assert snapshots["partitions"] == 1
    assert snapshots["cleanup.policy"] == "compact"
    assert configs[f"{namespace}.deadletter.compute"]["retention.ms"] == "-1"
