"""A gateway and a network controller on one namespace of the session's broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.gateway.harness import Gateway
from tests.support.kafka import serving

from virga_eventlog import ensure_topics, virga_topics
from virga_network.config import NetworkConfig
from virga_network.service import definition
from virga_runtime import RunnerConfig, ServiceRunner


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Gateway]:
    """The gateway, with the network controller running behind it."""
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        specs = [s for s in virga_topics(3, namespace) if s.name.endswith("network")]
        await ensure_topics(gateway.settings, specs)
        config = NetworkConfig(namespace=namespace)
        controller = ServiceRunner(definition(config), gateway.settings, RunnerConfig())
        async with serving(controller):
            yield gateway
    finally:
        await gateway.close()
