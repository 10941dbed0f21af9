"""A gateway with two tenants that each own one resource of every type, per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.hostile.cloud import Cloud, cloud_on


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    built = await cloud_on(kafka_bootstrap)
    try:
        yield built
    finally:
        await built.gateway.close()
