"""Hostile requests on every operation of the route table: bodies and tokens.

Every operation with a JSON body refuses, with a problem naming the cause, a body of the
wrong type (415), one over the size limit (413), malformed JSON (400) and JSON nested
deeper than any body of the API (400 or 422, never a crash). Every operation that is not
public refuses a missing, malformed, forged, expired or revoked token with 401.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.integration.gateway.harness import Reply
from tests.integration.hostile.cloud import ADMIN_TOKEN, MAX_BODY_BYTES, ROUTES, Cloud

from virga_gateway.routing import Route
from virga_gateway.tokens import derive_token

pytestmark = pytest.mark.kafka

WITH_BODY = [r for r in ROUTES if r.request is not None]
NOT_PUBLIC = [r for r in ROUTES if r.access != "public" and r.handler is not None]


def token_for(route: Route, cloud: Cloud) -> str:
    return ADMIN_TOKEN if route.access == "admin" else cloud.a.token


def assert_problem(reply: Reply, status: int | tuple[int, ...], where: str) -> None:
    statuses = (status,) if isinstance(status, int) else status
    got = reply.status
    body = reply.body
    assert got in statuses, f"{where}: {got} {body!r}"
    assert reply.headers["Content-Type"].startswith("application/problem+json"), where
    assert body["status"] == got, where
    assert body["detail"], where


def test_the_route_table_has_bodies_and_protected_operations() -> None:
    assert len(WITH_BODY) >= 10
    assert len(NOT_PUBLIC) >= 30


async def test_every_body_of_the_wrong_content_type_is_415(cloud: Cloud) -> None:
    for route in WITH_BODY:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            reply = await cloud.call(
                route.method,
                cloud.path(route, cloud.a),
                token_for(route, cloud),
                data=b'{"name": "x"}',
                headers=headers,
            )
            assert_problem(reply, 415, f"{route.method} {route.path} as {content_type}")


async def test_every_oversized_body_is_413(cloud: Cloud) -> None:
    big = b'{"name": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    for route in WITH_BODY:
        reply = await cloud.call(
            route.method,
            cloud.path(route, cloud.a),
            token_for(route, cloud),
            data=big,
            headers={"Content-Type": "application/json"},
        )
        assert_problem(reply, 413, f"{route.method} {route.path}")
        assert str(MAX_BODY_BYTES) in reply.body["detail"]


async def test_every_malformed_body_is_400_naming_the_body(cloud: Cloud) -> None:
    for raw in (b'{"name": ', b"\xff\xfe", b"{'name': 'x'}", b'{"a": 1}{"b": 2}', b"NaN"):
        for route in WITH_BODY:
            reply = await cloud.call(
                route.method,
                cloud.path(route, cloud.a),
                token_for(route, cloud),
                data=raw,
                headers={"Content-Type": "application/json"},
            )
            assert_problem(reply, 400, f"{route.method} {route.path} with {raw!r}")
            assert [e["field"] for e in reply.body["errors"]] == ["body"]


@pytest.mark.parametrize("depth", [64, 1_000, 10_000])
async def test_deeply_nested_json_is_refused_cleanly(cloud: Cloud, depth: int) -> None:
    """Within the size limit, nesting deep enough to exhaust a recursive parser."""
    shapes = {
        "arrays": b"[" * depth + b"]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "in a field": b'{"name": ' + b"[" * depth + b"]" * depth + b"}",
    }
    for route in WITH_BODY:
        for shape, raw in shapes.items():
            reply = await cloud.call(
                route.method,
                cloud.path(route, cloud.a),
                token_for(route, cloud),
                data=raw,
                headers={"Content-Type": "application/json"},
            )
            assert_problem(reply, (400, 422), f"{route.method} {route.path}, {depth} {shape}")
    healthy = await cloud.call("GET", "/v1/instances", cloud.a.token)
    assert healthy.status == 200


async def test_every_protected_operation_refuses_bad_tokens_with_401(cloud: Cloud) -> None:
    issued = await cloud.call(
        "POST", f"/v1/tenants/{cloud.a.id}/tokens", ADMIN_TOKEN, json={"expires_in_seconds": 1}
    )
    expiring = issued.body["token"]
    revoked_id = cloud.a.owns["tokens"]
    revoked = derive_token(cloud.gateway.config.token_secret, revoked_id)
    assert (await cloud.call("GET", "/v1/instances", revoked)).status == 200
    assert (await cloud.call("DELETE", f"/v1/tokens/{revoked_id}", ADMIN_TOKEN)).status == 204
    await asyncio.sleep(1.1)
    bad = {
        "missing": None,
        "empty": "",
        "not a token": "hello",
        # The right shape, derived under another secret: a forgery.
        "forged": derive_token(b"not the gateway's secret, 32 bytes", str(uuid.uuid4())),
        "forged for a real id": derive_token(b"guessed secret guessed secret ..", revoked_id),
        "expired": expiring,
        "revoked": revoked,
        "admin token with a suffix": ADMIN_TOKEN + "x",
    }
    for route in NOT_PUBLIC:
        path = cloud.path(route, cloud.a)
        for what, token in bad.items():
            headers = {"Authorization": "Basic YWRtaW46YWRtaW4="} if what == "empty" else None
            reply = await cloud.call(route.method, path, token or None, headers=headers)
            assert_problem(reply, 401, f"{route.method} {route.path} with a {what} token")
            assert reply.headers["WWW-Authenticate"].startswith("Bearer")
            # One answer for every refusal: nothing says which tokens exist.
            assert reply.body["detail"] in (
                "the bearer token is not valid",
                "the Authorization header is missing",
                "the Authorization header must be 'Bearer <token>'",
            )


async def test_admin_operations_refuse_tenant_tokens_with_403(cloud: Cloud) -> None:
    for route in (r for r in NOT_PUBLIC if r.access == "admin"):
        reply = await cloud.call(route.method, cloud.path(route, cloud.b), cloud.b.token)
        assert_problem(reply, 403, f"{route.method} {route.path}")
