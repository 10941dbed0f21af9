"""The HTTP frame without Kafka: readiness, problem+json for every failure, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.gateway.app import CONFIG, unstarted
from tests.unit.gateway.events import envelope, fold

from virga_events.catalog import api
from virga_gateway.openapi import openapi_document
from virga_gateway.routes import ROUTES
from virga_gateway.tokens import token_sha256

Client = TestClient[web.Request, web.Application]
ADMIN = {"Authorization": f"Bearer {CONFIG.admin_token}"}


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


@pytest.fixture
async def cold() -> AsyncIterator[Client]:
    """A gateway still rebuilding its projection."""
    _, app = unstarted()
    app.router.add_get("/v1/boom", boom)
    async with TestClient(TestServer(app)) as client:
        yield client


@pytest.fixture
async def warm() -> AsyncIterator[Client]:
    """A caught-up gateway whose projection holds only the admin token."""
    runner, app = unstarted()
    issued = api.TokenIssued(token_sha256=token_sha256(CONFIG.admin_token), role="admin")
    runner.state = fold(envelope(issued, "admin"))
    runner.ready.set()
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_before_the_projection_is_ready_everything_but_meta_is_503(cold: Client) -> None:
    async with cold.get("/healthz") as health:
        assert health.status == 503
    async with cold.get("/v1/instances", headers=ADMIN) as reply:
        assert reply.status == 503
        assert reply.content_type == "application/problem+json"
        assert reply.headers["Retry-After"] == str(CONFIG.retry_after_seconds)
    async with cold.post("/v1/tenants", json={"name": "a"}, headers=ADMIN) as reply:
        assert reply.status == 503
    async with cold.get("/v1/openapi.json") as document:
        assert document.status == 200
        assert await document.json() == openapi_document(ROUTES)


async def test_once_ready_health_is_200_and_tokens_are_checked(warm: Client) -> None:
    async with warm.get("/healthz") as health:
        assert health.status == 200
    async with warm.get("/v1/tenants", headers=ADMIN) as reply:
        assert reply.status == 200
        assert await reply.json() == {"items": [], "next": None}
    async with warm.get("/v1/tenants", headers={"Authorization": "Bearer guess"}) as reply:
        assert reply.status == 401


async def test_an_unexpected_error_is_a_500_problem_without_internals(cold: Client) -> None:
    async with cold.get("/v1/boom", headers={"X-Request-Id": "trace-me"}) as reply:
        assert reply.status == 500
        assert reply.content_type == "application/problem+json"
        body = await reply.json()
    assert body["correlation_id"] == "trace-me"
    assert reply.headers["X-Request-Id"] == "trace-me"
    assert "secret internals" not in str(body)
    assert "Traceback" not in str(body)


async def test_unknown_routes_and_methods_are_problems(cold: Client) -> None:
    async with cold.get("/v2/whatever") as reply:
        assert reply.status == 404
        body = await reply.json()
    assert body["type"].startswith("https://")
    assert body["instance"] == "/v2/whatever"
    assert body["title"]
    assert body["detail"]
    async with cold.put("/v1/flavors") as reply:
        assert reply.status == 405
        assert reply.content_type == "application/problem+json"
        assert set(reply.headers["Allow"].split(",")) >= {"GET", "POST"}


async def test_a_body_over_the_limit_is_413(warm: Client) -> None:
    body = {"name": "x", "flavor": "m1.tiny", "image": "i" * CONFIG.max_body_bytes}
    async with warm.post("/v1/instances", json=body, headers=ADMIN) as reply:
        assert reply.status == 413
        assert reply.content_type == "application/problem+json"
        assert str(CONFIG.max_body_bytes) in (await reply.json())["detail"]


async def test_a_body_that_is_not_json_is_415(warm: Client) -> None:
    headers = {**ADMIN, "Content-Type": "text/plain"}
    async with warm.post("/v1/tenants", data=b'{"name": "a"}', headers=headers) as reply:
        assert reply.status == 415
        assert reply.content_type == "application/problem+json"
