"""Instances through their life: requests on `<ns>.api`, and the scheduler's and compute
agents' facts (fed onto their topics) moving what users see."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests.integration.gateway.harness import Gateway, Reply, wait_until
from tests.support.kafka import read_events

from virga_eventlog import event_topic
from virga_events import REGISTRY
from virga_events.catalog import Flavor, api, compute, scheduler

pytestmark = pytest.mark.kafka

SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)


def scheduled(instance: dict[str, Any], host: str = "host-1") -> scheduler.InstanceScheduled:
    return scheduler.InstanceScheduled(
        host=host, rack="r1", zone="az1", attempt=1, name=instance["name"], flavor=SMALL
    )


async def status_becomes(gateway: Gateway, path: str, token: str, status: str) -> Reply:
    """Poll until the projection shows `status` (fed facts are read asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while True:
        reply = await gateway.call("GET", path, token=token)
        if reply.body["status"] == status:
            return reply
        assert loop.time() < deadline, f"{path} stayed {reply.body['status']}, not {status}"
        await asyncio.sleep(0.02)


async def test_a_new_instance_is_building_and_readable_at_once(gateway: Gateway) -> None:
    tenant_id, token = await gateway.tenant()
    reply = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": "web-1", "flavor": "m1.small", "required_traits": ["CUSTOM_SSD"]},
        headers={"X-Request-Id": "req-42"},
    )
    assert reply.status == 202
    assert reply.headers["X-Request-Id"] == "req-42"
    instance = reply.body
    assert instance["status"] == "BUILDING"
    assert instance["tenant_id"] == tenant_id
    assert instance["flavor"] == {"name": "m1.small", "vcpus": 1, "ram_mb": 2048, "disk_gb": 20}
    assert instance["addresses"] == []
    assert instance["volumes"] == []
    assert instance["host"] is None
    assert instance["fault"] is None
    # Read-your-writes: no waiting between the 202 and the GET.
    got = await gateway.call("GET", f"/v1/instances/{instance['id']}", token=token)
    assert got.status == 200
    assert got.body == instance

    events = await gateway.call("GET", f"/v1/instances/{instance['id']}/events", token=token)
    assert [e["type"] for e in events.body] == ["InstanceRequested"]
    # The client's X-Request-Id, namespaced under its tenant (issue #13.3).
    assert events.body[0]["correlation_id"] == f"tenant:{tenant_id}:req-42"
    assert events.body[0]["payload"]["flavor"]["name"] == "m1.small"
    logged = await read_events(
        gateway.settings.bootstrap_servers, event_topic("gateway", gateway.namespace), REGISTRY
    )
    requested = [e for e in logged if isinstance(e.payload, api.InstanceRequested)]
    assert len(requested) == 1
    assert requested[0].aggregate_id == instance["id"]
    assert requested[0].tenant_id == tenant_id
    assert requested[0].payload.flavor == SMALL
    assert requested[0].payload.required_traits == ("CUSTOM_SSD",)


async def test_bad_instance_requests_name_the_field(gateway: Gateway) -> None:
    tenant_id, token = await gateway.tenant()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "has space", "flavor": "m1.small"}, "name"),
        ({"name": "x" * 64, "flavor": "m1.small"}, "name"),
        ({"flavor": "m1.small"}, "name"),
        ({"name": "ok", "flavor": "m9.huge"}, "flavor"),
        ({"name": "ok", "flavor": "m1.small", "server_group": "nope"}, "server_group"),
        ({"name": "ok", "flavor": "m1.small", "colour": "red"}, "colour"),
        ({"name": "ok", "flavor": "m1.small", "required_traits": ["lower"]}, "required_traits[0]"),
        ({"name": "ok", "flavor": "m1.small", "restart_policy": "sometimes"}, "restart_policy"),
    ]
    for body, field in cases:
        reply = await gateway.call("POST", "/v1/instances", token=token, json=body)
        assert reply.status == 422, body
        assert reply.headers["Content-Type"] == "application/problem+json"
        assert reply.problem_fields == [field], body
    # Admins say whose instance it is.
    admin = await gateway.call("POST", "/v1/instances", json={"name": "a", "flavor": "m1.tiny"})
    assert admin.status == 422
    assert admin.problem_fields == ["tenant_id"]
    for_tenant = await gateway.call(
        "POST", "/v1/instances", json={"name": "a", "flavor": "m1.tiny", "tenant_id": tenant_id}
    )
    assert for_tenant.status == 202
    assert for_tenant.body["tenant_id"] == tenant_id


async def test_scheduler_and_compute_facts_drive_the_status(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    instance = await gateway.instance(token)
    iid, path = instance["id"], f"/v1/instances/{instance['id']}"
    await gateway.feed(
        "compute",
        [
            (
                "host-1",
                compute.HostRegistered(rack="r1", zone="az1", vcpus=8, ram_mb=16384, disk_gb=200),
            )
        ],
    )
    await gateway.feed("scheduler", [(iid, scheduled(instance))])
    await gateway.feed("compute", [(iid, compute.InstanceStarted(host="host-1"))])
    running = await status_becomes(gateway, path, token, "RUNNING")
    assert running.body["host"] == "host-1"
    assert running.body["updated_at"] > instance["updated_at"]

    hosts = await gateway.call("GET", "/v1/hosts")
    (host,) = hosts.body["items"]
    assert host["name"] == "host-1"
    assert host["state"] == "up"
    assert host["enabled"] is True
    assert host["capacity"] == {"vcpus": 8, "ram_mb": 16384, "disk_gb": 200}
    assert host["allocated"] == {"vcpus": 1, "ram_mb": 2048, "disk_gb": 20}

    start = await gateway.call("POST", f"{path}/actions", token=token, json={"action": "start"})
    assert start.status == 409
    assert "RUNNING" in start.body["detail"]
    stop = await gateway.call("POST", f"{path}/actions", token=token, json={"action": "stop"})
    assert stop.status == 202
    await gateway.feed("compute", [(iid, compute.InstanceStopped(host="host-1"))])
    await status_becomes(gateway, path, token, "STOPPED")
    reboot = await gateway.call("POST", f"{path}/actions", token=token, json={"action": "reboot"})
    assert reboot.status == 409
    assert "STOPPED" in reboot.body["detail"]

    deleting = await gateway.call("DELETE", path, token=token)
    assert deleting.status == 202
    assert deleting.body["status"] == "DELETING"
    assert (await gateway.call("DELETE", path, token=token)).status == 202
    await gateway.feed("compute", [(iid, compute.InstanceDeleted(host="host-1"))])
    await gateway.feed(
        "scheduler", [(iid, scheduler.ClaimReleased(host="host-1", reason="deleted"))]
    )
    await status_becomes(gateway, path, token, "DELETED")
    assert (await gateway.call("DELETE", path, token=token)).status == 404
    listed = await gateway.call("GET", "/v1/instances", token=token)
    assert listed.body["items"] == []
    deleted = await gateway.call("GET", "/v1/instances?status=DELETED", token=token)
    assert [i["id"] for i in deleted.body["items"]] == [iid]
    await wait_until(lambda: _allocated(gateway, "host-1") == 0)

    history = await gateway.call("GET", f"{path}/events", token=token)
    assert [(e["type"], e["producer"]) for e in history.body] == [
        ("InstanceRequested", "gateway"),
        ("InstanceScheduled", "scheduler"),
        ("InstanceStarted", "compute"),
        ("InstanceActionRequested", "gateway"),
        ("InstanceStopped", "compute"),
        ("InstanceDeletionRequested", "gateway"),
        ("InstanceDeleted", "compute"),
        ("ClaimReleased", "scheduler"),
    ]
    # The second DELETE while DELETING wrote nothing.
    logged = await read_events(
        gateway.settings.bootstrap_servers, event_topic("gateway", gateway.namespace), REGISTRY
    )
    assert sum(isinstance(e.payload, api.InstanceDeletionRequested) for e in logged) == 1


async def test_a_guest_that_crashes_is_restarted_as_its_policy_says(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    body = {"name": "web", "flavor": "m1.small", "restart_policy": "on-crash"}
    created = await gateway.call("POST", "/v1/instances", token=token, json=body)
    assert created.status == 202
    instance = created.body
    assert (instance["restart_policy"], instance["stop_cause"]) == ("on-crash", None)
    iid, path = instance["id"], f"/v1/instances/{instance['id']}"
    logged = await read_events(
        gateway.settings.bootstrap_servers, event_topic("gateway", gateway.namespace), REGISTRY
    )
    [requested] = [e.payload for e in logged if e.aggregate_id == iid]
    assert isinstance(requested, api.InstanceRequested)
    assert requested.restart_policy == "on-crash"
    await gateway.feed("scheduler", [(iid, scheduled(instance))])
    await gateway.feed("compute", [(iid, compute.InstanceStarted(host="host-1"))])
    await status_becomes(gateway, path, token, "RUNNING")
    crashed = compute.InstanceStopped(host="host-1", cause="crashed")
    await gateway.feed("compute", [(iid, crashed)])
    stopped = await status_becomes(gateway, path, token, "STOPPED")
    assert stopped.body["stop_cause"] == "crashed"
    again = compute.InstanceRestarted(host="host-1", cause="crashed", policy="on-crash")
    await gateway.feed("compute", [(iid, again)])
    running = await status_becomes(gateway, path, token, "RUNNING")
    assert running.body["stop_cause"] is None
    history = await gateway.call("GET", f"{path}/events", token=token)
    assert [e["type"] for e in history.body][-2:] == ["InstanceStopped", "InstanceRestarted"]


def _allocated(gateway: Gateway, host: str) -> int:
    assert gateway.runner is not None
    return gateway.runner.state.hosts[host].allocated.vcpus


async def test_failures_show_as_faults(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    doomed = await gateway.instance(token, "doomed")
    retried = await gateway.instance(token, "retried")
    await gateway.feed(
        "scheduler",
        [
            (
                doomed["id"],
                scheduler.InstanceSchedulingFailed(reason="no host has 1 vCPU free", attempts=3),
            )
        ],
    )
    failed = await status_becomes(gateway, f"/v1/instances/{doomed['id']}", token, "ERROR")
    assert failed.body["fault"] == "no host has 1 vCPU free"
    assert failed.body["host"] is None
    stop = await gateway.call(
        "POST", f"/v1/instances/{doomed['id']}/actions", token=token, json={"action": "stop"}
    )
    assert stop.status == 409

    rid, path = retried["id"], f"/v1/instances/{retried['id']}"
    await gateway.feed("scheduler", [(rid, scheduled(retried, "host-1"))])
    await gateway.feed(
        "compute", [(rid, compute.InstanceFailed(host="host-1", phase="spawn", reason="disk full"))]
    )
    await wait_until(lambda: _fault(gateway, rid) == "disk full")
    building = await gateway.call("GET", path, token=token)
    assert building.body["status"] == "BUILDING"
    assert building.body["fault"] == "disk full"
    await gateway.feed("compute", [(rid, compute.InstanceDomainLost(host="host-1"))])
    await wait_until(lambda: _fault(gateway, rid) == "domain lost on host-1")


def _fault(gateway: Gateway, instance_id: str) -> str | None:
    assert gateway.runner is not None
    return gateway.runner.state.instances[instance_id].fault


async def test_admins_manage_flavors_server_groups_and_hosts(gateway: Gateway) -> None:
    _tenant_id, token = await gateway.tenant()
    flavor = {"name": "c1.big", "vcpus": 16, "ram_mb": 65536, "disk_gb": 100}
    assert (await gateway.call("POST", "/v1/flavors", json=flavor)).status == 201
    assert (await gateway.call("POST", "/v1/flavors", json=flavor)).status == 409
    listed = await gateway.call("GET", "/v1/flavors", token=token)
    assert flavor in listed.body["items"]
    bad = await gateway.call("POST", "/v1/flavors", json={**flavor, "name": "c1.x", "vcpus": 0})
    assert bad.status == 422
    assert bad.problem_fields == ["vcpus"]

    group = await gateway.call(
        "POST",
        "/v1/server-groups",
        token=token,
        json={"name": "db", "policy": "anti-affinity", "scope": "rack"},
    )
    assert group.status == 201
    assert group.body["members"] == []
    assert group.body["policy"] == "anti-affinity"
    member = await gateway.instance(token, "db-1", server_group=group.body["id"], flavor="c1.big")
    shown = await gateway.call("GET", f"/v1/server-groups/{group.body['id']}", token=token)
    assert shown.body["members"] == [member["id"]]
    assert member["flavor"]["vcpus"] == 16

    await gateway.feed(
        "compute",
        [
            (
                "host-9",
                compute.HostRegistered(rack="r9", zone="az1", vcpus=4, ram_mb=8192, disk_gb=80),
            )
        ],
    )
    await wait_until(lambda: gateway.runner is not None and "host-9" in gateway.runner.state.hosts)
    disabled = await gateway.call(
        "POST", "/v1/hosts/host-9/actions", json={"action": "disable", "reason": "RAM test"}
    )
    assert disabled.status == 202
    assert disabled.body["enabled"] is False
    assert disabled.body["disabled_reason"] == "RAM test"
    missing = await gateway.call("POST", "/v1/hosts/nowhere/actions", json={"action": "enable"})
    assert missing.status == 404
    ratios = await gateway.call(
        "PUT", "/v1/allocation-ratios", json={"cpu": 4.0, "ram": 1.5, "disk": 1.0}
    )
    assert ratios.status == 200
    assert ratios.body == {"host": "*", "cpu": 4.0, "ram": 1.5, "disk": 1.0}
    await gateway.feed("scheduler", [("host-9", scheduler.HostMarkedDown(last_heartbeat_at=None))])
    await wait_until(
        lambda: gateway.runner is not None and gateway.runner.state.hosts["host-9"].state == "down"
    )
    (host,) = (await gateway.call("GET", "/v1/hosts")).body["items"]
    assert host["state"] == "down"
    assert host["enabled"] is False
    assert host["allocation_ratios"] == {"host": "*", "cpu": 4.0, "ram": 1.5, "disk": 1.0}
