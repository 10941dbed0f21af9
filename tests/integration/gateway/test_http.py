"""The HTTP surface: problem+json for every kind of bad request, health, metrics, OpenAPI."""

from __future__ import annotations

import pytest
from tests.integration.gateway.harness import Gateway

pytestmark = pytest.mark.kafka

PROBLEM = "application/problem+json"


async def test_malformed_requests_get_problems(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    bad_json = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        data=b'{"name": "x", ',
        headers={"Content-Type": "application/json"},
    )
    assert bad_json.status == 400
    assert bad_json.headers["Content-Type"] == PROBLEM
    assert bad_json.problem_fields == ["body"]

    wrong_type = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        data=b"name=x&flavor=m1.tiny",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong_type.status == 415
    assert wrong_type.headers["Content-Type"] == PROBLEM

    too_big = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": "x", "flavor": "m1.tiny", "image": "i" * (1024 * 1024 + 1)},
    )
    assert too_big.status == 413
    assert too_big.headers["Content-Type"] == PROBLEM
    assert too_big.body["status"] == 413

    nowhere = await gateway.call("GET", "/v1/nowhere", token=token)
    assert nowhere.status == 404
    assert nowhere.headers["Content-Type"] == PROBLEM
    assert nowhere.body["instance"] == "/v1/nowhere"

    wrong_method = await gateway.call("PATCH", "/v1/instances", token=token, json={})
    assert wrong_method.status == 405
    assert wrong_method.headers["Content-Type"] == PROBLEM
    assert "GET" in wrong_method.headers["Allow"]


async def test_every_answer_carries_a_request_id(gateway: Gateway) -> None:
    given = await gateway.call("GET", "/v1/flavors", headers={"X-Request-Id": "abc-123"})
    assert given.headers["X-Request-Id"] == "abc-123"
    made = await gateway.call("GET", "/v1/nowhere", headers={"X-Request-Id": "<script>" * 20})
    assert made.headers["X-Request-Id"] != "<script>" * 20
    assert made.body["correlation_id"] == made.headers["X-Request-Id"]


async def test_health_metrics_and_openapi_are_public(gateway: Gateway) -> None:
    health = await gateway.call("GET", "/healthz", token=None)
    assert health.status == 200
    assert health.body == {"status": "ready"}
    metrics = await gateway.call("GET", "/metrics", token=None)
    assert metrics.status == 200
    assert b'virga_ready{service="gateway"} 1.0' in metrics.body
    document = await gateway.call("GET", "/v1/openapi.json", token=None)
    assert document.status == 200
    assert document.body["openapi"] == "3.1.0"
    assert "post" in document.body["paths"]["/v1/instances"]
