"""Instances end to end: HTTP → gateway → scheduler → compute agents on libvirt's test driver.

Every service runs as its own OS process on the test broker, as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from tests.support.api import Api, ApiError
from tests.support.kafka import read_events
from tests.support.stack import HostSpec, Stack

from virga_eventlog import event_topic
from virga_events import REGISTRY

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

HOSTS = (HostSpec("host-a", "rack-1"), HostSpec("host-b", "rack-2"), HostSpec("host-c", "rack-3"))


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("stack"), HOSTS)
    with stack.running():
        yield stack


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, stack.gateway_url, stack.admin_token)


@pytest.fixture
async def tenant(admin: Api) -> Api:
    _, token = await admin.create_tenant(f"tenant-{uuid.uuid4().hex[:6]}")
    return admin.as_token(token)


async def test_thirty_concurrent_boots_all_run_spread_over_the_hosts(tenant: Api) -> None:
    created = await asyncio.gather(*(tenant.create_instance(f"web-{i}") for i in range(30)))
    assert {c["status"] for c in created} == {"BUILDING"}
    views = await tenant.wait_status([c["id"] for c in created], {"RUNNING"}, seconds=90)
    per_host = Counter(v["host"] for v in views)
    assert set(per_host) == {h.name for h in HOSTS}
    # Spread: equal hosts share the load evenly.
    assert max(per_host.values()) - min(per_host.values()) <= 1


async def test_rack_anti_affinity_places_one_per_rack_and_refuses_a_fourth(tenant: Api) -> None:
    group = await tenant.call(
        "POST",
        "/v1/server-groups",
        {"name": "db", "policy": "anti-affinity", "scope": "rack"},
    )
    members = [await tenant.create_instance(f"db-{i}", server_group=group["id"]) for i in range(3)]
    views = await tenant.wait_status([m["id"] for m in members], {"RUNNING"})
    assert len({v["host"] for v in views}) == 3
    fourth = await tenant.create_instance("db-3", server_group=group["id"])
    [failed] = await tenant.wait_status([fourth["id"]], {"ERROR"})
    assert "anti-affinity" in failed["fault"]
    assert "rack" in failed["fault"]


async def test_stop_start_reboot_delete(tenant: Api) -> None:
    instance = await tenant.create_instance("life")
    iid = instance["id"]
    await tenant.wait_status([iid], {"RUNNING"})
    await tenant.call("POST", f"/v1/instances/{iid}/actions", {"action": "stop"})
    await tenant.wait_status([iid], {"STOPPED"})
    with pytest.raises(ApiError) as conflict:
        await tenant.call("POST", f"/v1/instances/{iid}/actions", {"action": "reboot"})
    assert conflict.value.status == 409
    await tenant.call("POST", f"/v1/instances/{iid}/actions", {"action": "start"})
    await tenant.wait_status([iid], {"RUNNING"})
    await tenant.call("POST", f"/v1/instances/{iid}/actions", {"action": "reboot"})
    await tenant.call("DELETE", f"/v1/instances/{iid}")
    [deleted] = await tenant.wait_status([iid], {"DELETED"})
    assert deleted["id"] == iid
    expected = {
        "InstanceRequested",
        "InstanceScheduled",
        "InstanceStarted",
        "InstanceStopped",
        "InstanceRebooted",
        "InstanceDeletionRequested",
        "InstanceDeleted",
        "ClaimReleased",
    }
    history: set[str] = set()
    for _ in range(100):  # the claim is released just after the agent reports the deletion
        history = {e["type"] for e in await tenant.call("GET", f"/v1/instances/{iid}/events")}
        if expected <= history:
            break
        await asyncio.sleep(0.1)
    assert expected <= history


async def test_a_tenant_cannot_see_or_touch_another_tenants_instance(
    admin: Api, tenant: Api
) -> None:
    _, other_token = await admin.create_tenant("other")
    other = admin.as_token(other_token)
    mine = await tenant.create_instance("private")
    for method, path in [
        ("GET", f"/v1/instances/{mine['id']}"),
        ("DELETE", f"/v1/instances/{mine['id']}"),
        ("GET", f"/v1/instances/{mine['id']}/events"),
    ]:
        with pytest.raises(ApiError) as hidden:
            await other.call(method, path)
        assert hidden.value.status == 404
    listed = await other.call("GET", "/v1/instances")
    assert mine["id"] not in {i["id"] for i in listed["items"]}


async def test_an_idempotent_retry_creates_one_instance(tenant: Api) -> None:
    key = {"Idempotency-Key": f"boot-{uuid.uuid4()}"}
    body = {"name": "once", "flavor": "m1.tiny"}
    first, second = await asyncio.gather(
        tenant.call("POST", "/v1/instances", body, headers=key),
        tenant.call("POST", "/v1/instances", body, headers=key),
    )
    third = await tenant.call("POST", "/v1/instances", body, headers=key)
    assert first["id"] == second["id"] == third["id"]
    listed = await tenant.call("GET", "/v1/instances")
    assert [i["name"] for i in listed["items"]].count("once") == 1
    with pytest.raises(ApiError) as conflict:
        await tenant.call("POST", "/v1/instances", {**body, "name": "other"}, headers=key)
    assert conflict.value.status == 422


async def test_scheduler_and_agent_killed_mid_build_converge_without_duplicates(
    stack: Stack, tenant: Api
) -> None:
    created = await asyncio.gather(*(tenant.create_instance(f"crash-{i}") for i in range(12)))
    stack.processes["scheduler"].kill()
    stack.processes["compute-host-b"].kill()
    # The kills landed mid-build: every request was in the log (the build had begun), and not
    # every instance had been reported started (read after the kills, so only more can show).
    early = {c["id"] for c in created}
    requested = await read_events(
        stack.bootstrap, event_topic("gateway", stack.namespace), REGISTRY
    )
    assert {e.aggregate_id for e in requested if e.type == "InstanceRequested"} >= early
    compute = await read_events(stack.bootstrap, event_topic("compute", stack.namespace), REGISTRY)
    started = {e.aggregate_id for e in compute if e.type == "InstanceStarted"} & early
    assert len(started) < len(early), "the kills landed after every instance had started"
    more = await asyncio.gather(*(tenant.create_instance(f"crash-late-{i}") for i in range(6)))
    await asyncio.sleep(1.0)
    stack.restart("scheduler")
    stack.restart("compute-host-b")
    ids = [c["id"] for c in [*created, *more]]
    views = await tenant.wait_status(ids, {"RUNNING"}, seconds=120)
    assert len(views) == 18
    for iid in ids:
        history = await tenant.call("GET", f"/v1/instances/{iid}/events")
        scheduled = [e for e in history if e["type"] == "InstanceScheduled"]
        # One placement per attempt: a restart never repeats a decision.
        assert len({e["payload"]["attempt"] for e in scheduled}) == len(scheduled)
        assert len({e["event_id"] for e in history}) == len(history)
