"""Every status a route answers is in its OpenAPI responses: each route is called with every
kind of caller (none, a bad token, its owner, another tenant, an admin) and every kind of bad
request (no body, malformed JSON, a body of the wrong shape, a bad query parameter, a bad
Idempotency-Key, an id nothing has), and each answer's status is looked up in the document.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN
from tests.integration.hostile.cloud import NEVER_USED, ROUTES, Cloud

from virga_gateway.openapi import openapi_document
from virga_gateway.routing import Route

pytestmark = pytest.mark.kafka

DOCUMENT = openapi_document(ROUTES)


def documented(route: Route) -> set[int]:
    operation = DOCUMENT["paths"][route.path][route.method.lower()]
    return {int(status) for status in operation["responses"]}


def bodies(route: Route) -> list[dict[str, Any]]:
    """Keyword arguments of `Cloud.call` for each kind of body sent."""
    kinds: list[dict[str, Any]] = [{}]
    if route.method in ("POST", "PUT", "PATCH"):
        json = {"headers": {"Content-Type": "application/json"}}
        kinds += [
            {**json, "data": b"{"},
            {"json": []},
            {"json": {}},
            {"json": {"name": "x", "unknown_field": 1}},
            {"data": b"\x00\x01", "headers": {"Content-Type": "application/octet-stream"}},
        ]
    return kinds


STREAMS = {"streamEvents"}
"""Operations whose body never ends (Server-Sent Events): their status is read, not their body."""


async def stream_status(cloud: Cloud, path: str, token: str | None) -> int:
    client = cloud.gateway.client
    assert client is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with client.get(path, headers=headers) as response:
        return response.status


async def test_every_status_a_route_answers_is_documented(cloud: Cloud) -> None:
    undocumented: list[str] = []
    seen: dict[str, set[int]] = {}

    async def attempt(route: Route, path: str, token: str | None, **kw: Any) -> None:
        if route.operation_id in STREAMS:
            status, body = await stream_status(cloud, path, token), "(a stream)"
        else:
            reply = await cloud.call(route.method, path, token, **kw)
            status, body = reply.status, str(reply.body)[:200]
        seen.setdefault(f"{route.method} {route.path}", set()).add(status)
        if status not in documented(route):
            undocumented.append(f"{route.method} {path} ({sorted(kw)}): {status} {body}")

    for route in ROUTES:
        owned = cloud.path(route, cloud.a)
        never = route.path.format(
            id=NEVER_USED, volume_id=NEVER_USED, snapshot_id=NEVER_USED, name="nope",
            period="2026-13", rule_id=NEVER_USED, network_id=NEVER_USED,
        )  # fmt: skip
        for token in (None, "not-a-token", cloud.b.token, cloud.a.token, ADMIN_TOKEN):
            for body in bodies(route):
                for path in dict.fromkeys((owned, never)):
                    await attempt(route, path, token, **body)
        for param in route.query:
            separator = "&" if "?" in owned else "?"
            await attempt(route, f"{owned}{separator}{param.name}=%00bad%20value", cloud.a.token)
            await attempt(route, f"{owned}{separator}{param.name}=", ADMIN_TOKEN)
        if route.method == "POST":
            bad_key = {"headers": {"Idempotency-Key": "k" * 300}, "json": {}}
            await attempt(route, owned, cloud.a.token, **bad_key)
    assert not undocumented, "\n".join(undocumented)
    assert len(seen) == len({(r.method, r.path) for r in ROUTES})
