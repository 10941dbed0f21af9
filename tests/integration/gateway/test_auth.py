"""Tokens and tenancy against the real broker: who may call what, and who sees what."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.gateway.harness import Gateway

pytestmark = pytest.mark.kafka


async def test_an_admin_creates_a_tenant_whose_token_then_works(gateway: Gateway) -> None:
    created = await gateway.call("POST", "/v1/tenants", json={"name": "acme"})
    assert created.status == 201
    assert set(created.body) == {"id", "name"}
    assert created.body["name"] == "acme"
    listed = await gateway.call("GET", "/v1/tenants")
    assert listed.body["items"] == [created.body]

    issued = await gateway.call("POST", f"/v1/tenants/{created.body['id']}/tokens", json={})
    assert issued.status == 201
    assert set(issued.body) == {"id", "token", "expires_at"}
    assert issued.body["expires_at"] is None
    assert len(issued.body["token"]) >= 43  # 256 bits in urlsafe base64
    flavors = await gateway.call("GET", "/v1/flavors", token=issued.body["token"])
    assert flavors.status == 200
    assert {f["name"] for f in flavors.body["items"]} >= {"m1.tiny", "m1.small", "m1.large"}

    again = await gateway.call("POST", "/v1/tenants", json={"name": "acme"})
    assert again.status == 409
    assert again.problem_fields == ["name"]
    unknown = await gateway.call("POST", "/v1/tenants/no-such-tenant/tokens")
    assert unknown.status == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Basic dXNlcjpwYXNz", "Bearer virga_forged-token-that-was-never-issued"],
)
async def test_a_request_without_a_valid_token_is_401(
    gateway: Gateway, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reply = await gateway.call("GET", "/v1/instances", token=None, headers=headers)
    assert reply.status == 401
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert reply.body["status"] == 401


async def test_revoked_and_expired_tokens_stop_working(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    tokens = f"/v1/tenants/{tenant_id}/tokens"
    lasting = (await gateway.call("POST", tokens)).body
    short = (await gateway.call("POST", tokens, json={"expires_in_seconds": 1})).body
    assert (await gateway.call("GET", "/v1/flavors", token=lasting["token"])).status == 200
    assert (await gateway.call("GET", "/v1/flavors", token=short["token"])).status == 200

    assert (await gateway.call("DELETE", f"/v1/tokens/{lasting['id']}")).status == 204
    assert (await gateway.call("GET", "/v1/flavors", token=lasting["token"])).status == 401
    assert (await gateway.call("DELETE", f"/v1/tokens/{lasting['id']}")).status == 204
    assert (await gateway.call("DELETE", "/v1/tokens/no-such-token")).status == 404

    await asyncio.sleep(1.1)
    assert (await gateway.call("GET", "/v1/flavors", token=short["token"])).status == 401


async def test_admin_routes_refuse_tenants_with_403(gateway: Gateway) -> None:
    tenant_id, token = await gateway.tenant()
    for method, path, body in [
        ("GET", "/v1/tenants", None),
        ("POST", "/v1/tenants", {"name": "other"}),
        ("POST", f"/v1/tenants/{tenant_id}/tokens", {}),
        ("POST", "/v1/flavors", {"name": "x1", "vcpus": 1, "ram_mb": 512, "disk_gb": 1}),
        ("GET", "/v1/hosts", None),
        ("PUT", "/v1/allocation-ratios", {"cpu": 4, "ram": 1, "disk": 1}),
    ]:
        reply = await gateway.call(method, path, token=token, json=body)
        assert reply.status == 403, (method, path)


async def test_a_tenant_never_sees_another_tenants_resources(gateway: Gateway) -> None:
    _, alice = await gateway.tenant("alice")
    _, bob = await gateway.tenant("bob")
    hers = await gateway.instance(alice, "alice-vm")
    his = await gateway.instance(bob, "bob-vm")
    group = await gateway.call(
        "POST", "/v1/server-groups", token=alice, json={"name": "g", "policy": "affinity"}
    )
    assert group.status == 201

    path = f"/v1/instances/{hers['id']}"
    assert (await gateway.call("GET", path, token=bob)).status == 404
    assert (await gateway.call("GET", f"{path}/events", token=bob)).status == 404
    assert (await gateway.call("DELETE", path, token=bob)).status == 404
    action = await gateway.call("POST", f"{path}/actions", token=bob, json={"action": "stop"})
    assert action.status == 404
    foreign_group = await gateway.call("GET", f"/v1/server-groups/{group.body['id']}", token=bob)
    assert foreign_group.status == 404
    assert (await gateway.call("GET", "/v1/server-groups", token=bob)).body["items"] == []
    # Bob cannot place his instance into Alice's group either.
    placed = await gateway.call(
        "POST",
        "/v1/instances",
        token=bob,
        json={"name": "x", "flavor": "m1.tiny", "server_group": group.body["id"]},
    )
    assert placed.status == 422
    assert placed.problem_fields == ["server_group"]

    bobs_list = await gateway.call("GET", "/v1/instances", token=bob)
    assert [i["id"] for i in bobs_list.body["items"]] == [his["id"]]
    everyone = await gateway.call("GET", "/v1/instances")
    assert {i["id"] for i in everyone.body["items"]} == {hers["id"], his["id"]}
    # An admin acts on any tenant's instance.
    assert (await gateway.call("GET", path)).status == 200
