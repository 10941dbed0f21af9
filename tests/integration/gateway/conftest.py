"""A fresh gateway (own namespace, own topics) per test, on the session's Kafka broker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.gateway.harness import Gateway


@pytest.fixture
async def gateway(kafka_bootstrap: str) -> AsyncIterator[Gateway]:
    running = await Gateway.create(kafka_bootstrap)
    try:
        yield running
    finally:
        await running.close()
