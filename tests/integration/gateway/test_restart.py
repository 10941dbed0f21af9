"""A restarted gateway answers as before: from its snapshot, or rebuilt from the log alone."""

from __future__ import annotations

import pytest
from tests.integration.gateway.harness import Gateway, wait_until

from virga_events.catalog import Flavor, compute, scheduler

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("snapshot", [True, False], ids=["graceful", "crash"])
async def test_state_survives_a_restart(gateway: Gateway, snapshot: bool) -> None:
    tenant_id, token = await gateway.tenant("acme")
    doomed = (await gateway.call("POST", f"/v1/tenants/{tenant_id}/tokens")).body
    assert (await gateway.call("DELETE", f"/v1/tokens/{doomed['id']}")).status == 204
    key = {"Idempotency-Key": "web-1"}
    body = {"name": "web-1", "flavor": "m1.small"}
    created = await gateway.call("POST", "/v1/instances", token=token, json=body, headers=key)
    other = await gateway.instance(token, "web-2")
    flavor = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)
    iid = created.body["id"]
    await gateway.feed(
        "compute",
        [("host-1", compute.HostRegistered(rack="r1", zone="z", vcpus=8, ram_mb=8192, disk_gb=90))],
    )
    await gateway.feed(
        "scheduler",
        [
            (
                iid,
                scheduler.InstanceScheduled(
                    host="host-1", rack="r1", zone="z", attempt=1, name="web-1", flavor=flavor
                ),
            )
        ],
    )
    await gateway.feed("compute", [(iid, compute.InstanceStarted(host="host-1"))])
    await wait_until(
        lambda: (
            gateway.runner is not None and gateway.runner.state.instances[iid].status == "RUNNING"
        )
    )
    path = f"/v1/instances/{iid}"
    before = {
        "instance": (await gateway.call("GET", path, token=token)).body,
        "events": (await gateway.call("GET", f"{path}/events", token=token)).body,
        "list": (await gateway.call("GET", "/v1/instances", token=token)).body,
        "hosts": (await gateway.call("GET", "/v1/hosts")).body,
        "tenants": (await gateway.call("GET", "/v1/tenants")).body,
    }
    assert before["instance"]["status"] == "RUNNING"

    await gateway.restart(snapshot=snapshot)
    assert gateway.runner is not None
    assert (gateway.runner.rebuild_records == 0) is snapshot

    after = {
        "instance": (await gateway.call("GET", path, token=token)).body,
        "events": (await gateway.call("GET", f"{path}/events", token=token)).body,
        "list": (await gateway.call("GET", "/v1/instances", token=token)).body,
        "hosts": (await gateway.call("GET", "/v1/hosts")).body,
        "tenants": (await gateway.call("GET", "/v1/tenants")).body,
    }
    assert after == before
    assert {i["id"] for i in after["list"]["items"]} == {iid, other["id"]}
    assert (await gateway.call("GET", "/v1/flavors", token=doomed["token"])).status == 401
    retry = await gateway.call("POST", "/v1/instances", token=token, json=body, headers=key)
    assert retry.status == 202
    assert retry.body == created.body  # the first answer, BUILDING, as it was then
    # Only one admin token, however often the gateway starts.
    assert sum(t.role == "admin" for t in gateway.runner.state.tokens.values()) == 1
