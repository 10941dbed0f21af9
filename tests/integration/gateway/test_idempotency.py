"""Idempotency-Key: a retried POST creates nothing new and gets the first answer again."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.gateway.harness import Gateway
from tests.support.kafka import read_events

from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_events.catalog import api

pytestmark = pytest.mark.kafka


async def api_events(gateway: Gateway) -> list[Envelope]:
    topic = event_topic("gateway", gateway.namespace)
    return await read_events(gateway.settings.bootstrap_servers, topic, REGISTRY)


async def test_a_retry_replays_the_first_response_and_creates_nothing(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    body = {"name": "web-1", "flavor": "m1.small"}
    key = {"Idempotency-Key": "create-web-1"}
    first = await gateway.call("POST", "/v1/instances", token=token, json=body, headers=key)
    assert first.status == 202
    # The same JSON with keys in another order is the same request.
    reordered = {"flavor": "m1.small", "name": "web-1"}
    retry = await gateway.call("POST", "/v1/instances", token=token, json=reordered, headers=key)
    assert retry.status == 202
    assert retry.body == first.body
    assert retry.headers["Idempotent-Replayed"] == "true"

    events = await api_events(gateway)
    requested = [e for e in events if isinstance(e.payload, api.InstanceRequested)]
    assert [e.aggregate_id for e in requested] == [first.body["id"]]
    (recorded,) = [e for e in events if isinstance(e.payload, api.IdempotentRequestRecorded)]
    assert recorded.payload.key == "create-web-1"
    assert recorded.correlation_id == requested[0].correlation_id

    listed = await gateway.call("GET", "/v1/instances", token=token)
    assert len(listed.body["items"]) == 1


async def test_concurrent_retries_create_one_resource(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    replies = await asyncio.gather(
        *(
            gateway.call(
                "POST",
                "/v1/instances",
                token=token,
                json={"name": "racy", "flavor": "m1.tiny"},
                headers={"Idempotency-Key": "race"},
            )
            for _ in range(8)
        )
    )
    assert {r.status for r in replies} == {202}
    assert len({r.body["id"] for r in replies}) == 1
    requested = [e for e in await api_events(gateway) if e.type == "InstanceRequested"]
    assert len(requested) == 1


async def test_a_key_reused_for_another_request_is_refused(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    key = {"Idempotency-Key": "k1"}
    first = await gateway.call(
        "POST", "/v1/instances", token=token, json={"name": "a", "flavor": "m1.tiny"}, headers=key
    )
    assert first.status == 202
    other = await gateway.call(
        "POST", "/v1/instances", token=token, json={"name": "b", "flavor": "m1.tiny"}, headers=key
    )
    assert other.status == 422
    assert other.problem_fields == ["Idempotency-Key"]
    # Keys belong to their principal: another tenant may use the same one.
    _, stranger = await gateway.tenant()
    theirs = await gateway.call(
        "POST",
        "/v1/instances",
        token=stranger,
        json={"name": "b", "flavor": "m1.tiny"},
        headers=key,
    )
    assert theirs.status == 202
    for bad in ["", "x" * 256, "tab\there"]:
        reply = await gateway.call(
            "POST",
            "/v1/instances",
            token=token,
            json={"name": "c", "flavor": "m1.tiny"},
            headers={"Idempotency-Key": bad},
        )
        assert reply.status == 400, repr(bad)
        assert reply.problem_fields == ["Idempotency-Key"]


async def test_a_retried_token_issuance_returns_the_same_working_token(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    path, key = f"/v1/tenants/{tenant_id}/tokens", {"Idempotency-Key": "tok"}
    first = await gateway.call("POST", path, json={"expires_in_seconds": 3600}, headers=key)
    retry = await gateway.call("POST", path, json={"expires_in_seconds": 3600}, headers=key)
    assert first.status == retry.status == 201
    assert retry.body == first.body
    assert (await gateway.call("GET", "/v1/flavors", token=retry.body["token"])).status == 200
    # The log holds the token's hash, never the token.
    for event in await api_events(gateway):
        if isinstance(event.payload, api.IdempotentRequestRecorded):
            assert first.body["token"] not in event.payload.body
            assert first.body["id"] in event.payload.body
