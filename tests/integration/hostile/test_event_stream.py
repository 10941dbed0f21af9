"""`GET /v1/events/stream` on the real broker: two tenants streaming at once each see their own
changes only, an admin sees both; no token, no stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientResponse
from tests.integration.gateway.harness import ADMIN_TOKEN
from tests.integration.hostile.cloud import Cloud

STREAM = "/v1/events/stream"


@asynccontextmanager
async def streaming(cloud: Cloud, token: str) -> AsyncIterator[ClientResponse]:
    client = cloud.gateway.client
    assert client is not None
    async with client.get(STREAM, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield response


async def changes_until(response: ClientResponse, marker: str) -> list[dict[str, Any]]:
    """The changes the stream carries up to the one about `marker` (included)."""
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        event = ""
        while True:
            line = (await response.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: ") and event == "change":
                seen.append(json.loads(line[len("data: ") :]))
                if seen[-1]["id"] == marker:
                    return

    await asyncio.wait_for(read(), 30)
    return seen


async def volume(cloud: Cloud, token: str, name: str) -> str:
    reply = await cloud.call("POST", "/v1/volumes", token, json={"name": name, "size_gb": 1})
    assert reply.status == 202, reply.body
    created: str = reply.body["id"]
    return created


async def test_two_tenants_streaming_at_once_see_only_their_own(cloud: Cloud) -> None:
    a, b = cloud.a, cloud.b
    async with (
        streaming(cloud, a.token) as on_a,
        streaming(cloud, b.token) as on_b,
        streaming(cloud, ADMIN_TOKEN) as on_admin,
    ):
        a_first = await volume(cloud, a.token, "a-1")
        b_first = await volume(cloud, b.token, "b-1")
        a_marker = await volume(cloud, a.token, "a-2")
        b_marker = await volume(cloud, b.token, "b-2")
        seen_a = await changes_until(on_a, a_marker)
        seen_b = await changes_until(on_b, b_marker)
        seen_admin = await changes_until(on_admin, b_marker)
    assert {c["tenant_id"] for c in seen_a} == {a.id}, seen_a
    assert {c["tenant_id"] for c in seen_b} == {b.id}, seen_b
    assert a_first in {c["id"] for c in seen_a}
    assert b_first in {c["id"] for c in seen_b}
    for change in seen_b:  # nothing of A's, not even an id, in B's stream
        assert a.id not in json.dumps(change)
        assert not set(a.owns.values()) & {change["id"]}
    for change in seen_a:
        assert b.id not in json.dumps(change)
    assert {a_first, b_first, a_marker} <= {c["id"] for c in seen_admin}
    volumes = [c for c in seen_a if c["id"] == a_first]
    assert volumes[0]["kind"] == "volume"
    assert volumes[0]["type"] == "VolumeRequested"


async def test_an_instance_change_carries_its_view_and_timeline_entry(cloud: Cloud) -> None:
    a = cloud.a
    async with streaming(cloud, a.token) as on_a:
        created = await cloud.gateway.instance(a.token, "streamed")
        seen = await changes_until(on_a, created["id"])
    change = seen[-1]
    assert change["kind"] == "instance"
    assert change["instance"]["id"] == created["id"]
    assert change["instance"]["status"] == "BUILDING"
    assert change["entry"]["type"] == change["type"] == "InstanceRequested"


async def test_no_token_no_stream(cloud: Cloud) -> None:
    client = cloud.gateway.client
    assert client is not None
    async with client.get(STREAM) as response:
        assert response.status == 401
    async with client.get(STREAM, headers={"Authorization": "Bearer not-a-token"}) as response:
        assert response.status == 401
