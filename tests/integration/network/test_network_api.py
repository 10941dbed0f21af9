"""Networks, ports and security groups through the HTTP API, decided by the real controller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.gateway.harness import Gateway, Reply
from tests.support.kafka import read_events

from virga_eventlog.topics import event_topic
from virga_events.catalog import Flavor, compute, scheduler
from virga_events.catalog.network import (
    NetworkCreated,
    default_security_group_id,
    instance_port_id,
    security_group_rule_id,
)
from virga_events.registry import REGISTRY

pytestmark = pytest.mark.kafka


async def until(
    gateway: Gateway, path: str, token: str, done: Callable[[Reply], bool], seconds: float = 20
) -> Reply:
    """Poll `path` until `done` holds (the controller decides asynchronously)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while True:
        reply = await gateway.call("GET", path, token=token)
        if done(reply):
            return reply
        assert loop.time() < deadline, f"{path}: {reply.status} {reply.body}"
        await asyncio.sleep(0.05)


async def network(gateway: Gateway, token: str, cidr: str, **extra: Any) -> dict[str, Any]:
    reply = await gateway.call(
        "POST", "/v1/networks", token=token, json={"name": "net", "cidr": cidr, **extra}
    )
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "BUILDING"
    path = f"/v1/networks/{reply.body['id']}"
    active = await until(gateway, path, token, lambda r: r.body["status"] == "ACTIVE")
    body: dict[str, Any] = active.body
    return body


async def port(gateway: Gateway, token: str, network_id: str, **extra: Any) -> dict[str, Any]:
    reply = await gateway.call(
        "POST", "/v1/ports", token=token, json={"network_id": network_id, **extra}
    )
    assert reply.status == 202, reply.body
    path = f"/v1/ports/{reply.body['id']}"
    down = await until(gateway, path, token, lambda r: r.body["status"] != "BUILDING")
    body: dict[str, Any] = down.body
    return body


async def test_a_network_its_ports_and_their_deletion(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    _, other = await cloud.tenant()
    net = await network(cloud, token, "10.20.0.0/24")
    assert (net["gateway_ip"], net["ip_version"]) == ("10.20.0.1", 4)
    assert net["allocation_pools"] == [{"start": "10.20.0.2", "end": "10.20.0.254"}]
    assert net["vni"] >= 1000
    theirs = await network(cloud, other, "10.20.0.0/24")  # overlapping CIDRs across tenants
    assert theirs["vni"] != net["vni"]

    ports = [await port(cloud, token, net["id"]) for _ in range(3)]
    assert [p["status"] for p in ports] == ["DOWN"] * 3
    assert [p["ips"] for p in ports] == [["10.20.0.2"], ["10.20.0.3"], ["10.20.0.4"]]
    assert len({p["mac"] for p in ports}) == 3
    assert {tuple(p["security_groups"]) for p in ports} == {
        (default_security_group_id(ports[0]["tenant_id"]),)
    }
    listed = await cloud.call("GET", f"/v1/ports?network_id={net['id']}", token=token)
    assert [p["id"] for p in listed.body["items"]] == [p["id"] for p in ports]
    for path in (f"/v1/networks/{net['id']}", f"/v1/ports/{ports[0]['id']}"):
        assert (await cloud.call("GET", path, token=other)).status == 404
        assert (await cloud.call("DELETE", path, token=other)).status == 404

    refused = await cloud.call("DELETE", f"/v1/networks/{net['id']}", token=token)
    assert refused.status == 409
    assert refused.problem_fields == ["ports"]
    assert all(p["id"] in refused.body["detail"] for p in ports)

    for each in ports:
        deleting = await cloud.call("DELETE", f"/v1/ports/{each['id']}", token=token)
        assert deleting.status == 202
        assert deleting.body["status"] == "DELETING"
    for each in ports:
        await until(cloud, f"/v1/ports/{each['id']}", token, lambda r: r.status == 404)
    deleted = await cloud.call("DELETE", f"/v1/networks/{net['id']}", token=token)
    assert deleted.status == 202
    await until(cloud, f"/v1/networks/{net['id']}", token, lambda r: r.status == 404)
    listed = await cloud.call("GET", "/v1/networks", token=token)
    assert listed.body["items"] == []


BAD_SUBNETS: list[tuple[dict[str, Any], str]] = [
    ({"cidr": "10.0.0.1/24"}, "cidr"),
    ({"cidr": "10.0.0.0/31"}, "cidr"),
    ({"cidr": "10.0.0.0/4"}, "cidr"),
    ({"cidr": "fd00::/48"}, "cidr"),
    ({"cidr": "not-a-network"}, "cidr"),
    (
        {"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.0.1", "end": "10.0.0.9"}]},
        "allocation_pools[0]",
    ),
    (
        {"cidr": "10.0.0.0/24", "allocation_pools": [{"start": "10.0.1.1", "end": "10.0.1.9"}]},
        "allocation_pools[0].start",
    ),
]


async def test_a_bad_subnet_is_a_422_naming_the_field(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    for body, field in BAD_SUBNETS:
        reply = await cloud.call("POST", "/v1/networks", token=token, json={"name": "n", **body})
        assert reply.status == 422, reply.body
        assert reply.problem_fields == [field], body


async def test_a_network_without_dhcp_says_so_and_the_controller_passes_it_on(
    cloud: Gateway,
) -> None:
    _, token = await cloud.tenant()
    plain = await network(cloud, token, "10.21.0.0/24")
    static = await network(cloud, token, "10.22.0.0/24", dhcp=False)
    assert (plain["dhcp"], static["dhcp"]) == (True, False)
    listed = await cloud.call("GET", "/v1/networks", token=token)
    assert [n["dhcp"] for n in listed.body["items"]] == [True, False]
    # What the network agents fold: the controller's NetworkCreated carries it.
    bootstrap = cloud.settings.bootstrap_servers
    topic = event_topic("network", cloud.namespace)
    created = {
        e.aggregate_id: e.payload.dhcp
        for e in await read_events(bootstrap, topic, REGISTRY)
        if isinstance(e.payload, NetworkCreated)
    }
    assert (created[plain["id"]], created[static["id"]]) == (True, False)
    for bad in ("false", 0, None, [False]):  # strictly a JSON boolean
        body = {"name": "n", "cidr": "10.23.0.0/24", "dhcp": bad}
        reply = await cloud.call("POST", "/v1/networks", token=token, json=body)
        assert reply.status == 422, reply.body
        assert reply.problem_fields == ["dhcp"], bad


async def test_a_retried_network_request_creates_one_network(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    body = {"name": "n", "cidr": "10.60.0.0/24"}
    key = {"Idempotency-Key": "net-once"}
    first = await cloud.call("POST", "/v1/networks", token=token, json=body, headers=key)
    again = await cloud.call("POST", "/v1/networks", token=token, json=body, headers=key)
    assert (first.status, again.status) == (202, 202)
    assert again.body["id"] == first.body["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = await cloud.call("GET", "/v1/networks", token=token)
    assert [n["id"] for n in listed.body["items"]] == [first.body["id"]]
    await until(
        cloud, f"/v1/networks/{first.body['id']}", token, lambda r: r.body["vni"] is not None
    )
    hosted = {"network_id": first.body["id"], "host": "hv-1"}
    refused = await cloud.call("POST", "/v1/ports", token=token, json=hosted)
    assert refused.status == 422
    assert refused.problem_fields == ["host"]
    admin = await cloud.call("POST", "/v1/ports", json={**hosted, "tenant_id": tenant_id})
    assert admin.status == 202, admin.body
    path = f"/v1/ports/{admin.body['id']}"
    assert (await until(cloud, path, token, lambda r: r.body["host"] == "hv-1")).status == 200


async def test_an_exhausted_pool_is_a_409_and_ipv6_works(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    small = await network(cloud, token, "10.30.0.0/29")  # .2 to .6
    ips = [(await port(cloud, token, small["id"]))["ips"][0] for _ in range(5)]
    assert ips == [f"10.30.0.{i}" for i in range(2, 7)]
    full = await cloud.call("POST", "/v1/ports", token=token, json={"network_id": small["id"]})
    assert full.status == 409
    assert full.problem_fields == ["network_id"]
    v6 = await network(cloud, token, "fd00:30::/64")
    assert v6["allocation_pools"] == [
        {"start": "fd00:30::2", "end": "fd00:30::ffff:ffff:ffff:ffff"}
    ]
    assert (await port(cloud, token, v6["id"]))["ips"] == ["fd00:30::2"]


async def test_security_groups(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    _, other = await cloud.tenant()
    default_id = default_security_group_id(tenant_id)
    ssh = {"direction": "ingress", "protocol": "tcp", "port_min": 22, "remote_cidr": "10.0.0.9/8"}
    created = await cloud.call(
        "POST",
        "/v1/security-groups",
        token=token,
        json={"name": "ssh", "rules": [ssh, {"direction": "ingress", "remote_group": default_id}]},
    )
    assert created.status == 201, created.body
    group = created.body
    assert group["rules"][0] == {
        "id": security_group_rule_id(group["id"], 0),
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_min": 22,
        "port_max": 22,
        "remote_cidr": "10.0.0.0/8",
        "remote_group": None,
    }
    listed = await cloud.call("GET", "/v1/security-groups", token=token)
    assert [(g["id"], g["default"]) for g in listed.body["items"]] == [
        (default_id, True),
        (group["id"], False),
    ]
    bad = await cloud.call(
        "POST",
        "/v1/security-groups",
        token=token,
        json={
            "name": "bad",
            "rules": [
                {"direction": "ingress", "remote_group": group["id"] + "x"},
                {"direction": "egress", "protocol": "icmp", "port_min": 1},
                {"direction": "egress", "ethertype": "IPv6", "remote_cidr": "10.0.0.0/8"},
            ],
        },
    )
    assert bad.status == 422
    assert bad.problem_fields == [
        "rules[0].remote_group",
        "rules[1].port_min",
        "rules[2].remote_cidr",
    ]
    assert (
        await cloud.call("GET", f"/v1/security-groups/{group['id']}", token=other)
    ).status == 404

    net = await network(cloud, token, "10.40.0.0/24")
    unknown = await cloud.call(
        "POST",
        "/v1/ports",
        token=token,
        json={"network_id": net["id"], "security_groups": [group["id"], "nope"]},
    )
    assert unknown.status == 422
    assert unknown.problem_fields == ["security_groups[1]"]
    guarded = await port(cloud, token, net["id"], security_groups=[group["id"]])
    assert guarded["security_groups"] == [group["id"]]
    in_use = await cloud.call("DELETE", f"/v1/security-groups/{group['id']}", token=token)
    assert in_use.status == 409
    assert guarded["id"] in in_use.body["detail"]
    assert (
        await cloud.call("DELETE", f"/v1/security-groups/{default_id}", token=token)
    ).status == 409
    await cloud.call("DELETE", f"/v1/ports/{guarded['id']}", token=token)
    await until(cloud, f"/v1/ports/{guarded['id']}", token, lambda r: r.status == 404)
    gone = await cloud.call("DELETE", f"/v1/security-groups/{group['id']}", token=token)
    assert gone.status == 204
    assert (
        await cloud.call("GET", f"/v1/security-groups/{group['id']}", token=token)
    ).status == 404


TINY = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)


async def test_an_instance_on_a_network_shows_its_addresses(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    _, other = await cloud.tenant()
    net = await network(cloud, token, "10.50.0.0/24")
    foreign = await cloud.call(
        "POST",
        "/v1/instances",
        token=other,
        json={"name": "web", "flavor": "m1.small", "network": net["id"]},
    )
    assert foreign.status == 422
    assert foreign.problem_fields == ["network"]

    instance = await cloud.instance(token, network=net["id"])
    path = f"/v1/instances/{instance['id']}"
    shown = await until(cloud, path, token, lambda r: bool(r.body["addresses"]))
    [address] = shown.body["addresses"]
    assert (address["network"], address["ip"]) == (net["id"], "10.50.0.2")
    port_id = instance_port_id(instance["id"])
    port_view = (await cloud.call("GET", f"/v1/ports/{port_id}", token=token)).body
    assert (port_view["instance_id"], port_view["mac"]) == (instance["id"], address["mac"])
    assert (await cloud.call("DELETE", f"/v1/ports/{port_id}", token=token)).status == 409

    placed = scheduler.InstanceScheduled(
        host="hv-7", rack="r", zone="z", attempt=1, name="web-1", flavor=TINY, network=net["id"]
    )
    await cloud.feed("scheduler", [(instance["id"], placed)])
    await until(cloud, f"/v1/ports/{port_id}", token, lambda r: r.body["host"] == "hv-7")

    await cloud.feed("compute", [(instance["id"], compute.InstanceDeleted(host="hv-7"))])
    await until(cloud, f"/v1/ports/{port_id}", token, lambda r: r.status == 404)
    assert (await cloud.call("GET", path, token=token)).body["addresses"] == []
