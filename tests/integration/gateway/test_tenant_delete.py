"""Deleting a tenant on the real broker (issue #15): refused with counts while it owns anything,
then its tokens are refused, it is gone from every answer, its name is free, its history stays
in the log, and a gateway rebuilt from the log answers the same."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from tests.integration.gateway.harness import Gateway

from virga_audit.trace import trace
from virga_events.catalog import compute

pytestmark = pytest.mark.kafka


async def delete_when_empty(gateway: Gateway, tenant_id: str) -> int:
    """DELETE the tenant, again while the projection still counts what was just deleted."""
    for _ in range(200):
        reply = await gateway.call("DELETE", f"/v1/tenants/{tenant_id}")
        if reply.status != 409:
            return reply.status
        await asyncio.sleep(0.05)
    return reply.status


async def test_a_tenant_is_deleted_only_once_it_owns_nothing_and_stays_deleted(
    gateway: Gateway,
) -> None:
    name = f"acme-{uuid.uuid4().hex[:8]}"
    tenant_id, token = await gateway.tenant(name)
    _, bystander = await gateway.tenant()
    instance = await gateway.instance(token)
    group = await gateway.call(
        "POST", "/v1/server-groups", token=token, json={"name": "g", "policy": "affinity"}
    )
    assert group.status == 201, group.body

    refused = await gateway.call("DELETE", f"/v1/tenants/{tenant_id}")
    assert refused.status == 409, refused.body
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert {(e["field"], e["message"]) for e in refused.body["errors"]} == {
        ("instances", "1 not deleted"),
        ("server_groups", "1 not deleted"),
    }
    forbidden = await gateway.call("DELETE", f"/v1/tenants/{tenant_id}", token=bystander)
    assert forbidden.status == 403
    assert (await gateway.call("DELETE", f"/v1/tenants/{tenant_id}", token=token)).status == 403
    assert (await gateway.call("GET", "/v1/flavors", token=token)).status == 200  # untouched

    # Deleting is only requested: the instance still counts until compute reports it gone.
    asked = await gateway.call("DELETE", f"/v1/instances/{instance['id']}", token=token)
    assert asked.status == 202, asked.body
    still = await gateway.call("DELETE", f"/v1/tenants/{tenant_id}")
    assert still.status == 409
    assert [e["field"] for e in still.body["errors"]] == ["instances", "server_groups"]
    await gateway.feed("compute", [(instance["id"], compute.InstanceDeleted(host=None))])
    for _ in range(200):  # the group is free once its member is gone
        gone = await gateway.call("DELETE", f"/v1/server-groups/{group.body['id']}", token=token)
        if gone.status == 204:
            break
        await asyncio.sleep(0.05)
    assert gone.status == 204, gone.body
    assert await delete_when_empty(gateway, tenant_id) == 204

    async def deleted_everywhere() -> None:
        refused = await gateway.call("GET", "/v1/flavors", token=token)
        assert refused.status == 401
        assert refused.body["detail"] == "the tenant was deleted"
        assert (await gateway.call("GET", "/v1/flavors", token=bystander)).status == 200
        listed = (await gateway.call("GET", "/v1/tenants")).body["items"]
        assert tenant_id not in {t["id"] for t in listed}
        for method, path in (
            ("DELETE", f"/v1/tenants/{tenant_id}"),
            ("GET", f"/v1/tenants/{tenant_id}/tokens"),
            ("POST", f"/v1/tenants/{tenant_id}/tokens"),
            ("GET", f"/v1/tenants/{tenant_id}/quotas"),
        ):
            assert (await gateway.call(method, path)).status == 404, (method, path)
        acted = await gateway.call(
            "POST", f"/v1/tenants/{tenant_id}/actions", json={"action": "enable"}
        )
        assert acted.status == 404

    await deleted_everywhere()
    # Its history stays in the log.
    traced = [type(e.payload).__name__ for e in await trace(gateway.settings, tenant_id)]
    assert traced[0] == "TenantCreated"
    assert "TenantDeleted" in traced
    # A gateway rebuilt from the log answers the same; then the name is free for a new tenant.
    await gateway.restart(snapshot=False)
    await deleted_everywhere()
    await gateway.restart(snapshot=True)
    await deleted_everywhere()
    reused = await gateway.call("POST", "/v1/tenants", json={"name": name})
    assert reused.status == 201, reused.body
    assert reused.body["id"] != tenant_id


async def create(gateway: Gateway, token: str, n: int, delay: float) -> int:
    await asyncio.sleep(delay)
    body = {"name": f"vm-{n}", "flavor": "m1.small"}
    return (await gateway.call("POST", "/v1/instances", token=token, json=body)).status


async def delete(gateway: Gateway, tenant_id: str, delay: float) -> int:
    await asyncio.sleep(delay)
    return (await gateway.call("DELETE", f"/v1/tenants/{tenant_id}")).status


async def test_a_create_racing_the_delete_never_leaves_a_resource_to_a_deleted_tenant(
    gateway: Gateway,
) -> None:
    """Unlimited quotas (the harness's default): creates do not queue for a limit, yet a
    deletion waits for those in flight, and those that come meanwhile wait for it: either it
    sees a create, or no create lands. (Before the tenant gates, this failed: a 204 while all
    six creates were accepted.) Odd rounds start the creates just after it: they are accepted
    while it is being appended, and queue behind it."""
    outcomes: list[tuple[int, list[int]]] = []
    for round_ in range(6):
        tenant_id, token = await gateway.tenant()

        *created, deleted = await asyncio.gather(
            *(create(gateway, token, n, 0.002 * (n + 1) * (round_ % 2)) for n in range(6)),
            delete(gateway, tenant_id, 0.002 * (round_ // 2)),
        )
        outcomes.append((deleted, created))
        assert set(created) <= {202, 401}, created
        assert deleted in (204, 409)
        # 204 only if no create landed; 409 only if one did.
        assert (deleted == 204) == (202 not in created), (deleted, created)
        if deleted == 409:
            listed = await gateway.call("GET", f"/v1/instances?tenant_id={tenant_id}&limit=100")
            assert len(listed.body["items"]) == created.count(202)
    assert outcomes
