"""Quotas on a real broker: concurrent requests never exceed a limit, and never are refused
short of it; defaults and overrides; usage released on deletion; the audit agrees."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway, Reply

from virga_audit.check import check
from virga_cli.main import cli
from virga_events.catalog import compute

pytestmark = pytest.mark.kafka


async def create_concurrently(gateway: Gateway, token: str, count: int) -> list[Reply]:
    names = [f"vm-{n}" for n in range(count)]
    return await asyncio.gather(
        *(
            gateway.call(
                "POST", "/v1/instances", token=token, json={"name": name, "flavor": "m1.tiny"}
            )
            for name in names
        )
    )


async def test_100_concurrent_creates_against_a_limit_of_10_accept_exactly_10(
    gateway: Gateway,
) -> None:
    _, token = await gateway.tenant(quotas={"instances": 10})
    started = time.perf_counter()
    replies = await create_concurrently(gateway, token, 100)
    seconds = time.perf_counter() - started
    statuses = [r.status for r in replies]
    print(
        f"limit 10: {statuses.count(202)} accepted, {statuses.count(403)} refused, {seconds:.2f} s"
    )
    assert statuses.count(202) == 10
    assert statuses.count(403) == 90
    refused = next(r for r in replies if r.status == 403)
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    assert refused.body["type"].endswith("/quota-exceeded")
    assert refused.problem_fields == ["instances"]
    assert "limit 10, in use 10, requested 1" in refused.body["detail"]
    own = await gateway.call("GET", "/v1/quotas", token=token)
    assert own.status == 200
    assert own.body["usage"]["instances"] == 10
    assert own.body["limits"]["instances"] == 10
    listed = await gateway.call("GET", "/v1/instances?limit=200", token=token)
    assert len(listed.body["items"]) == 10
    # The audit, recounting from the log, finds no request accepted over its limit.
    assert [
        v for v in await check(gateway.settings, datetime.now(UTC)) if v.kind == "over-quota"
    ] == []


async def test_100_concurrent_creates_against_a_limit_of_100_accept_all(gateway: Gateway) -> None:
    _, token = await gateway.tenant(quotas={"instances": 100})
    started = time.perf_counter()
    replies = await create_concurrently(gateway, token, 100)
    seconds = time.perf_counter() - started
    statuses = [r.status for r in replies]
    print(
        f"limit 100: {statuses.count(202)} accepted, {statuses.count(403)} refused, {seconds:.2f} s"
    )
    assert statuses == [202] * 100
    own = await gateway.call("GET", "/v1/quotas", token=token)
    assert own.body["usage"]["instances"] == 100
    tiny_vcpus = own.body["usage"]["vcpus"] // 100
    assert own.body["usage"]["vcpus"] == 100 * tiny_vcpus


async def test_defaults_apply_until_a_tenant_has_its_own_limit(gateway: Gateway) -> None:
    defaults = await gateway.call("PUT", "/v1/quotas/defaults", json={"security_groups": 2})
    assert defaults.status == 200, defaults.body
    assert defaults.body["limits"]["security_groups"] == 2
    assert defaults.body["limits"]["instances"] == 10  # partial
    tenant_id, token = await gateway.tenant(quotas={"security_groups": None})

    async def group() -> Reply:
        body = {"name": f"sg-{uuid.uuid4().hex[:8]}", "rules": []}
        return await gateway.call("POST", "/v1/security-groups", token=token, json=body)

    first, second, third = [await group() for _ in range(3)]
    assert (first.status, second.status, third.status) == (201, 201, 403), third.body
    assert third.problem_fields == ["security_groups"]

    own = await gateway.call("PUT", f"/v1/tenants/{tenant_id}/quotas", json={"security_groups": 3})
    assert own.status == 200, own.body
    assert own.body["limits"]["security_groups"] == 3
    assert "security_groups" in own.body["overridden"]
    assert (await group()).status == 201
    assert (await group()).status == 403

    deleted = await gateway.call("DELETE", f"/v1/security-groups/{first.body['id']}", token=token)
    assert deleted.status == 204, deleted.body
    assert (await group()).status == 201  # deleting gives the share back

    seen = await gateway.call("GET", f"/v1/tenants/{tenant_id}/quotas")
    assert seen.body["usage"]["security_groups"] == 3
    cleared = await gateway.call(
        "PUT", f"/v1/tenants/{tenant_id}/quotas", json={"security_groups": None}
    )
    assert cleared.body["limits"]["security_groups"] == 2
    assert "security_groups" not in cleared.body["overridden"]


async def test_an_instance_gives_its_share_back_once_deleted_and_after_a_restart(
    gateway: Gateway,
) -> None:
    _, token = await gateway.tenant(quotas={"instances": 1})
    first = await gateway.instance(token, "one")
    assert (await create_concurrently(gateway, token, 1))[0].status == 403
    asked = await gateway.call("DELETE", f"/v1/instances/{first['id']}", token=token)
    assert asked.status == 202, asked.body
    assert (await create_concurrently(gateway, token, 1))[0].status == 403  # still deleting
    await gateway.feed("compute", [(first["id"], compute.InstanceDeleted(host="h1"))])
    for _ in range(200):
        own = await gateway.call("GET", "/v1/quotas", token=token)
        if own.body["usage"]["instances"] == 0:
            break
        await asyncio.sleep(0.05)
    assert own.body["usage"]["instances"] == 0
    await gateway.instance(token, "two")
    await gateway.restart()
    own = await gateway.call("GET", "/v1/quotas", token=token)
    assert own.body["usage"]["instances"] == 1
    assert (await create_concurrently(gateway, token, 1))[0].status == 403


async def test_a_tenant_cannot_read_or_set_quotas_but_its_own(gateway: Gateway) -> None:
    a_id, a_token = await gateway.tenant(quotas={"instances": 4})
    b_id, b_token = await gateway.tenant()
    for method, path, body in [
        ("GET", f"/v1/tenants/{a_id}/quotas", None),
        ("PUT", f"/v1/tenants/{a_id}/quotas", {"instances": 100}),
        ("PUT", f"/v1/tenants/{b_id}/quotas", {"instances": 100}),
        ("PUT", "/v1/quotas/defaults", {"instances": 100}),
    ]:
        reply = await gateway.call(method, path, token=b_token, json=body)
        assert reply.status == 403, (method, path, reply.body)
    own = await gateway.call("GET", "/v1/quotas", token=b_token)
    assert own.body["tenant_id"] == b_id
    assert (await gateway.call("GET", "/v1/quotas", token=a_token)).body["limits"]["instances"] == 4
    admin = await gateway.call("GET", "/v1/quotas")
    assert admin.status == 403


async def test_bad_limits_are_refused_naming_the_field(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    for body in ({"instances": -2}, {"instances": "ten"}, {"public_ips": 3}):
        reply = await gateway.call("PUT", f"/v1/tenants/{tenant_id}/quotas", json=body)
        assert reply.status == 422, reply.body
    missing = await gateway.call("PUT", f"/v1/tenants/{uuid.uuid4()}/quotas", json={})
    assert missing.status == 404


async def test_the_cli_shows_and_sets_quotas(gateway: Gateway, tmp_path: Path) -> None:
    assert gateway.client is not None
    url = str(gateway.client.make_url("")).rstrip("/")
    tenant_id, token = await gateway.tenant()

    async def virga(*args: str, as_token: str = ADMIN_TOKEN) -> Result:
        env = {"XDG_CONFIG_HOME": str(tmp_path), "VIRGA_TOKEN": as_token, "VIRGA_API_URL": url}
        return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env)

    done = await virga("quota", "set", tenant_id, "--instances", "20", "--vcpus", "40")
    assert done.exit_code == 0, done.output
    assert "20 (own)" in done.stdout
    # The tenant's own view (as a table: the in-process gateway logs to the same stdout).
    shown = await virga("quota", "show", as_token=token)
    assert shown.exit_code == 0, shown.output
    assert "40 (own)" in shown.stdout
    view = (await gateway.call("GET", "/v1/quotas", token=token)).body
    assert (view["limits"]["instances"], view["limits"]["vcpus"]) == (20, 40)
    assert view["limits"]["ram_mb"] == -1  # the harness lifted the others
    reset = await virga("quota", "set", tenant_id, "--ram-mb", "default")
    assert reset.exit_code == 0, reset.output
    assert (await gateway.call("GET", "/v1/quotas", token=token)).body["limits"]["ram_mb"] == 51_200
    defaults = await virga("quota", "defaults", "--snapshots", "unlimited")
    assert defaults.exit_code == 0, defaults.output
    assert "unlimited" in defaults.stdout
    refused = await virga("quota", "set", tenant_id, "--instances", "7", as_token=token)
    assert refused.exit_code != 0
    assert "administrators" in refused.output
    bad = await virga("quota", "set", tenant_id, "--instances", "many")
    assert bad.exit_code == 2
