"""Every list pages through a real gateway on Kafka; deleted instances are forgotten after the
retention window, and a rebuilt gateway forgets the same ones."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway, wait_until

from virga_events.catalog import compute
from virga_events.catalog import network as net

pytestmark = pytest.mark.kafka


async def walk(gateway: Gateway, path: str, token: str, limit: int) -> tuple[list[Any], int]:
    """Every item of the listing, following `next`; and how many pages it took."""
    items: list[Any] = []
    pages, cursor = 0, None
    separator = "&" if "?" in path else "?"
    while True:
        query = f"{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = await gateway.call("GET", f"{path}{query}", token=token)
        assert page.status == 200, page.body
        assert set(page.body) == {"items", "next"}
        assert len(page.body["items"]) <= limit
        items += page.body["items"]
        pages += 1
        cursor = page.body["next"]
        if cursor is None:
            return items, pages


async def test_networks_and_server_groups_page_per_tenant(gateway: Gateway) -> None:
    _, alice = await gateway.tenant()
    _, bob = await gateway.tenant()
    for n in range(7):
        for token, who in ((alice, "alice"), (bob, "bob")):
            body = {"name": f"{who}-{n}", "cidr": f"10.{n}.0.0/24"}
            assert (
                await gateway.call("POST", "/v1/networks", token=token, json=body)
            ).status == 202
            body = {"name": f"{who}-{n}", "policy": "affinity"}
            created = await gateway.call("POST", "/v1/server-groups", token=token, json=body)
            assert created.status == 201

    networks, pages = await walk(gateway, "/v1/networks", alice, 3)
    assert [n["name"] for n in networks] == [f"alice-{n}" for n in range(7)]
    assert pages == 3
    groups, _ = await walk(gateway, "/v1/server-groups", bob, 2)
    assert [g["name"] for g in groups] == [f"bob-{n}" for n in range(7)]
    everything, _ = await walk(gateway, "/v1/networks", ADMIN_TOKEN, 4)
    assert len([n for n in everything if n["name"].startswith(("alice", "bob"))]) == 14
    bad = await gateway.call("GET", "/v1/networks?cursor=nope", token=alice)
    assert bad.status == 400
    assert bad.problem_fields == ["cursor"]


async def test_the_ports_of_one_network_page(gateway: Gateway) -> None:
    _, alice = await gateway.tenant()
    created = await gateway.call(
        "POST", "/v1/networks", token=alice, json={"name": "web", "cidr": "10.9.0.0/24"}
    )
    network_id = created.body["id"]
    pools = (net.AllocationPool(start="10.9.0.2", end="10.9.0.254"),)
    done = net.NetworkCreated(
        name="web", cidr="10.9.0.0/24", vni=1000, gateway_ip="10.9.0.1", allocation_pools=pools
    )
    await gateway.feed("network", [(network_id, done)])

    def active() -> bool:
        assert gateway.runner is not None
        network = gateway.runner.state.networks.get(network_id)
        return network is not None and network.created

    await wait_until(active)
    for n in range(5):
        body = {"network_id": network_id, "name": f"p{n}"}
        assert (await gateway.call("POST", "/v1/ports", token=alice, json=body)).status == 202
    ports, pages = await walk(gateway, f"/v1/ports?network_id={network_id}", alice, 2)
    assert [p["name"] for p in ports] == [f"p{n}" for n in range(5)]
    assert pages == 3
    _, bob = await gateway.tenant()
    assert (await walk(gateway, f"/v1/ports?network_id={network_id}", bob, 2))[0] == []

    # A filter takes an id: a name (which would match nothing) is a 400 naming the parameter.
    for path in ("/v1/ports?network_id=web", "/v1/instances?tenant_id=acme"):
        named = await gateway.call("GET", path, token=ADMIN_TOKEN if "tenant" in path else alice)
        assert named.status == 400, named.body
        assert named.problem_fields == [path.split("?")[1].split("=")[0]]
    assert (await gateway.call("GET", "/v1/volumes?tenant_id=x", token=ADMIN_TOKEN)).status == 400

    # An instance names its network `network_id` as a port does; `network` is its older alias.
    for field in ("network_id", "network"):
        instance = await gateway.instance(alice, f"on-{field}", **{field: network_id})
        assert instance["network_id"] == instance["network"] == network_id
    other = str(uuid.uuid4())
    both = await gateway.call(
        "POST",
        "/v1/instances",
        token=alice,
        json={"name": "both", "flavor": "m1.small", "network_id": network_id, "network": other},
    )
    assert both.status == 422
    assert both.problem_fields == ["network"]
    unknown = await gateway.call(
        "POST",
        "/v1/instances",
        token=alice,
        json={"name": "nowhere", "flavor": "m1.small", "network_id": other},
    )
    assert unknown.status == 422
    assert unknown.problem_fields == ["network_id"]


async def test_a_deleted_instance_is_forgotten_after_the_window_and_after_a_rebuild(
    kafka_bootstrap: str,
) -> None:
    gateway = await Gateway.create(kafka_bootstrap, retention_seconds=1)
    try:
        _, token = await gateway.tenant()
        gone = await gateway.instance(token, "gone")
        kept = await gateway.instance(token, "kept")
        deleting = await gateway.call("DELETE", f"/v1/instances/{gone['id']}", token=token)
        assert deleting.status == 202
        await gateway.feed("compute", [(gone["id"], compute.InstanceDeleted(host=None))])
        shown = await gateway.call("GET", f"/v1/instances/{gone['id']}", token=token)
        assert shown.status in (200, 404)
        await asyncio.sleep(1.5)
        # Time moves on in the log (a heartbeat): the deletion is now older than the window.
        await gateway.feed("compute", [("host-1", compute.HostHeartbeat(running=0))])

        async def forgotten() -> bool:
            reply = await gateway.call("GET", f"/v1/instances/{gone['id']}", token=token)
            return reply.status == 404

        for _ in range(100):
            if await forgotten():
                break
            await asyncio.sleep(0.1)
        assert await forgotten()
        listed, _ = await walk(gateway, "/v1/instances?status=DELETED", token, 50)
        assert listed == []
        assert (await gateway.call("GET", f"/v1/instances/{kept['id']}", token=token)).status == 200

        await gateway.restart(snapshot=False)  # a rebuild from the log alone
        assert await forgotten()
        assert (await gateway.call("GET", f"/v1/instances/{kept['id']}", token=token)).status == 200
        assert gateway.runner is not None
        assert f"instance:{gone['id']}" in gateway.runner.state.forgotten
    finally:
        await gateway.close()
