"""Identities against the real broker: admin token rotation, a tenant's tokens listed and the
tenant disabled, and correlation ids no client can share with another tenant (issue #13.3)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway

from virga_audit.trace import trace

pytestmark = pytest.mark.kafka

NEW_ADMIN_TOKEN = "virga_rotated-admin-token-abcdefghijklmnopqrstuvwxyz0123"


@pytest.mark.parametrize("snapshot", [True, False], ids=["from-snapshot", "from-the-log"])
async def test_rotating_the_admin_token_revokes_the_old_one(
    gateway: Gateway, snapshot: bool
) -> None:
    assert (await gateway.call("GET", "/v1/tenants")).status == 200
    gateway.config = dataclasses.replace(gateway.config, admin_token=NEW_ADMIN_TOKEN)
    await gateway.restart(snapshot=snapshot)

    async def works(token: str) -> bool:
        return (await gateway.call("GET", "/v1/tenants", token=token)).status == 200

    for _ in range(100):  # the new token is issued once the projection has caught up
        if await works(NEW_ADMIN_TOKEN):
            break
        await asyncio.sleep(0.1)
    assert await works(NEW_ADMIN_TOKEN)
    old = await gateway.call("GET", "/v1/tenants", token=ADMIN_TOKEN)
    assert old.status == 401

    # Rebuilt from the log alone (no snapshot), the old token stays revoked.
    await gateway.restart(snapshot=False)
    assert await works(NEW_ADMIN_TOKEN)
    assert (await gateway.call("GET", "/v1/tenants", token=ADMIN_TOKEN)).status == 401

    # Configuring the old token again does not bring it back.
    gateway.config = dataclasses.replace(gateway.config, admin_token=ADMIN_TOKEN)
    await gateway.restart(snapshot=False)
    assert (await gateway.call("GET", "/v1/tenants", token=ADMIN_TOKEN)).status == 401


async def test_an_admin_lists_a_tenants_tokens_but_never_their_secrets(gateway: Gateway) -> None:
    tenant_id, first = await gateway.tenant()
    tokens = f"/v1/tenants/{tenant_id}/tokens"
    second = (await gateway.call("POST", tokens, json={"expires_in_seconds": 3600})).body
    other_tenant, _ = await gateway.tenant()
    issued = {t["id"] for t in (await gateway.call("GET", tokens)).body["items"]}
    first_id = issued - {second["id"]}
    assert len(issued) == 2
    assert second["id"] in issued
    (first_id_value,) = first_id
    assert (await gateway.call("DELETE", f"/v1/tokens/{first_id_value}")).status == 204

    listed = await gateway.call("GET", tokens)
    assert listed.status == 200
    by_id = {t["id"]: t for t in listed.body["items"]}
    assert set(by_id) == issued
    assert by_id[first_id_value]["revoked"] is True
    assert by_id[first_id_value]["revoked_at"] is not None
    assert by_id[second["id"]]["revoked"] is False
    assert by_id[second["id"]]["expires_at"] is not None
    assert all(
        set(t) == {"id", "created_at", "expires_at", "revoked", "revoked_at"}
        for t in by_id.values()
    )
    raw = str(listed.body)
    assert first not in raw
    assert second["token"] not in raw
    assert listed.body["next"] is None

    page = await gateway.call("GET", f"{tokens}?limit=1")
    assert len(page.body["items"]) == 1
    assert page.body["next"]
    rest = await gateway.call("GET", f"{tokens}?limit=1&cursor={page.body['next']}")
    assert {page.body["items"][0]["id"], rest.body["items"][0]["id"]} == issued
    assert rest.body["next"] is None
    assert other_tenant not in raw
    assert (await gateway.call("GET", "/v1/tenants/no-such-tenant/tokens")).status == 404
    refused = await gateway.call("GET", tokens, token=second["token"])
    assert refused.status == 403


async def test_a_disabled_tenants_tokens_stop_working_and_its_resources_stay(
    gateway: Gateway,
) -> None:
    tenant_id, token = await gateway.tenant()
    bystander_id, bystander = await gateway.tenant()
    instance = await gateway.instance(token)
    actions = f"/v1/tenants/{tenant_id}/actions"

    disabled = await gateway.call("POST", actions, json={"action": "disable", "reason": "unpaid"})
    assert disabled.status == 200
    assert disabled.body == {"id": tenant_id, "name": disabled.body["name"], "enabled": False}
    refused = await gateway.call("GET", "/v1/flavors", token=token)
    assert refused.status == 401
    assert "disabled" in refused.body["detail"]
    assert (await gateway.call("GET", "/v1/flavors", token=bystander)).status == 200
    # A token issued while disabled does not work either.
    fresh = (await gateway.call("POST", f"/v1/tenants/{tenant_id}/tokens")).body["token"]
    assert (await gateway.call("GET", "/v1/flavors", token=fresh)).status == 401
    # Its resources stay, for the admin to see.
    kept = await gateway.call("GET", f"/v1/instances/{instance['id']}")
    assert kept.status == 200
    assert kept.body["status"] != "DELETED"
    listed = {t["id"]: t for t in (await gateway.call("GET", "/v1/tenants")).body["items"]}
    assert listed[tenant_id]["enabled"] is False
    assert "enabled" not in listed[bystander_id]  # shown only when false

    # Disabled survives a rebuild from the log; enabling brings the tokens back.
    await gateway.restart(snapshot=False)
    assert (await gateway.call("GET", "/v1/flavors", token=token)).status == 401
    again = await gateway.call("POST", actions, json={"action": "disable"})
    assert again.status == 200
    assert again.body["enabled"] is False
    enabled = await gateway.call("POST", actions, json={"action": "enable"})
    assert enabled.status == 200
    assert "enabled" not in enabled.body
    assert (await gateway.call("GET", "/v1/flavors", token=token)).status == 200
    assert (await gateway.call("GET", "/v1/flavors", token=fresh)).status == 200
    assert (
        await gateway.call("POST", "/v1/tenants/nobody/actions", json={"action": "enable"})
    ).status == 404
    refused = await gateway.call("POST", actions, json={"action": "disable"}, token=bystander)
    assert refused.status == 403


async def test_two_tenants_sending_one_request_id_share_no_correlation(gateway: Gateway) -> None:
    _, alice = await gateway.tenant()
    _, mallory = await gateway.tenant()
    shared = {"X-Request-Id": f"req-{uuid.uuid4().hex[:8]}"}
    replies = [
        await gateway.call(
            "POST", "/v1/instances", token=token, headers=shared,
            json={"name": name, "flavor": "m1.small"},
        )
        for token, name in ((alice, "alice-web"), (mallory, "mallory-web"))
    ]  # fmt: skip
    assert [r.status for r in replies] == [202, 202]
    hers, his = replies[0].body, replies[1].body
    # `virga audit trace` of her instance shows none of his events.
    traced = await trace(gateway.settings, hers["id"])
    assert traced
    assert {e.aggregate_id for e in traced} == {hers["id"]}
    assert all(e.tenant_id != his["tenant_id"] for e in traced)

    async def correlations(instance_id: str, token: str) -> set[str]:
        events = await gateway.call("GET", f"/v1/instances/{instance_id}/events", token=token)
        assert events.status == 200
        return {e["correlation_id"] for e in events.body}

    hers_correlations = await correlations(hers["id"], alice)
    his_correlations = await correlations(his["id"], mallory)
    assert hers_correlations
    assert his_correlations
    assert hers_correlations.isdisjoint(his_correlations)
    assert all(shared["X-Request-Id"] in c for c in hers_correlations | his_correlations)

    # The client's id comes back as it sent it; the correlation id, namespaced, next to it.
    assert [r.headers["X-Request-Id"] for r in replies] == [shared["X-Request-Id"]] * 2
    assert replies[0].headers["X-Correlation-Id"] in hers_correlations
    assert replies[1].headers["X-Correlation-Id"] in his_correlations
