"""External networks and floating IPs through the HTTP API, decided by the real controller; a
floating IP is ACTIVE once its port's host confirms it (written here as that host's agent
would, in its own topic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN, Gateway
from tests.integration.network.host_agents import confirmed_by_its_host
from tests.integration.network.test_network_api import TINY, network, port, until
from tests.support.kafka import read_events

from virga_audit import check
from virga_eventlog.topics import event_topic
from virga_events.catalog import compute, scheduler
from virga_events.catalog.l3 import FloatingIpAssociationAccepted
from virga_events.catalog.network import instance_port_id
from virga_events.registry import REGISTRY
from virga_scheduler.config import SchedulerConfig

pytestmark = pytest.mark.kafka

EXTERNAL = {
    "name": "public",
    "cidr": "203.0.113.0/24",
    "gateway_ip": "203.0.113.1",
    "allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.12"}],
    "host_interface": "br-ex",
}


async def external_network(gateway: Gateway, **extra: Any) -> dict[str, Any]:
    reply = await gateway.call(
        "POST", "/v1/external-networks", token=ADMIN_TOKEN, json={**EXTERNAL, **extra}
    )
    assert reply.status == 202, reply.body
    path = f"/v1/external-networks/{reply.body['id']}"
    active = await until(gateway, path, ADMIN_TOKEN, lambda r: r.body["status"] == "ACTIVE")
    body: dict[str, Any] = active.body
    return body


async def routed(gateway: Gateway, token: str, external_id: str, network_id: str) -> str:
    """A router on the external network with the network attached; its id."""
    body = {"name": "edge", "external_network_id": external_id}
    created = await gateway.call("POST", "/v1/routers", token=token, json=body)
    assert created.status == 202, created.body
    path = f"/v1/routers/{created.body['id']}"
    await until(gateway, path, token, lambda r: r.body["status"] == "ACTIVE")
    added = await gateway.call(
        "POST", f"{path}/interfaces", token=token, json={"network_id": network_id}
    )
    assert added.status == 202, added.body
    await until(gateway, path, token, lambda r: r.body["interfaces"][0]["status"] == "ACTIVE")
    router_id: str = created.body["id"]
    return router_id


async def floating_ip(gateway: Gateway, token: str, external_id: str) -> dict[str, Any]:
    reply = await gateway.call(
        "POST", "/v1/floating-ips", token=token, json={"external_network_id": external_id}
    )
    assert reply.status == 202, reply.body
    assert reply.body["status"] == "BUILDING"
    path = f"/v1/floating-ips/{reply.body['id']}"
    done = await until(gateway, path, token, lambda r: r.body["status"] != "BUILDING")
    body: dict[str, Any] = done.body
    return body


async def test_external_networks_are_the_admins_and_every_tenant_sees_them(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    refused = await cloud.call("POST", "/v1/external-networks", token=token, json=EXTERNAL)
    assert refused.status == 403
    ext = await external_network(cloud)
    assert ext["allocation_pools"] == EXTERNAL["allocation_pools"]
    assert ext["host_interface"] == "br-ex"
    seen = await cloud.call("GET", f"/v1/external-networks/{ext['id']}", token=token)
    assert seen.status == 200
    assert seen.body["host_interface"] is None  # the hosts' wiring is the operator's
    listed = await cloud.call("GET", "/v1/external-networks", token=token)
    assert [n["id"] for n in listed.body["items"]] == [ext["id"]]
    deleting = await cloud.call("DELETE", f"/v1/external-networks/{ext['id']}", token=token)
    assert deleting.status == 403
    defaulted = await external_network(
        cloud, cidr="198.51.100.0/28", gateway_ip="198.51.100.14", allocation_pools=[]
    )
    assert defaulted["allocation_pools"] == [{"start": "198.51.100.2", "end": "198.51.100.13"}]


BAD_EXTERNAL: list[tuple[dict[str, Any], str]] = [
    ({"gateway_ip": "203.0.113.11"}, "gateway_ip"),  # inside the pool
    ({"gateway_ip": "192.0.2.1"}, "gateway_ip"),  # outside the CIDR
    ({"gateway_ip": "203.0.113.255"}, "gateway_ip"),  # the broadcast address
    ({"allocation_pools": [{"start": "203.0.114.1", "end": "203.0.114.9"}]},
     "allocation_pools[0].start"),
    ({"allocation_pools": [{"start": "203.0.113.10", "end": "203.0.113.20"},
                           {"start": "203.0.113.15", "end": "203.0.113.30"}]},
     "allocation_pools[1]"),
    ({"host_interface": "eth0/1"}, "host_interface"),
    ({"host_interface": "br ex"}, "host_interface"),
    ({"host_interface": ".."}, "host_interface"),
    ({"host_interface": "a-name-too-long-for-linux"}, "host_interface"),
    ({"cidr": "203.0.113.1/24"}, "cidr"),
]  # fmt: skip


async def test_a_bad_external_network_is_a_422_naming_the_field(cloud: Gateway) -> None:
    for change, field in BAD_EXTERNAL:
        body = {**EXTERNAL, **change}
        reply = await cloud.call("POST", "/v1/external-networks", token=ADMIN_TOKEN, json=body)
        assert reply.status == 422, (change, reply.body)
        assert reply.problem_fields == [field], change


async def test_floating_ips_are_never_held_twice_and_follow_their_ports(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    _, other = await cloud.tenant()
    ext = await external_network(
        cloud, allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.13"}]
    )
    net = await network(cloud, token, "10.30.0.0/24")
    first, second = await port(cloud, token, net["id"]), await port(cloud, token, net["id"])
    theirs = await port(cloud, other, (await network(cloud, other, "10.30.0.0/24"))["id"])

    mine = [await floating_ip(cloud, token, ext["id"]) for _ in range(2)]
    # Nothing reaches a port of a network without a router on the external network: 409.
    fip_path = f"/v1/floating-ips/{mine[0]['id']}"
    unrouted = await cloud.call("PUT", fip_path, token=token, json={"port_id": first["id"]})
    assert unrouted.status == 409
    assert unrouted.problem_fields == ["port_id"]
    router_id = await routed(cloud, token, ext["id"], net["id"])
    theirs_fip = await floating_ip(cloud, other, ext["id"])
    addresses = [f["ip"] for f in [*mine, theirs_fip]]
    assert sorted(addresses) == ["203.0.113.10", "203.0.113.11", "203.0.113.13"]
    assert {f["status"] for f in mine} == {"DOWN"}
    full = await cloud.call(
        "POST", "/v1/floating-ips", token=token, json={"external_network_id": ext["id"]}
    )
    assert full.status == 409
    assert full.problem_fields == ["external_network_id"]
    # The other tenant's floating IP and port do not exist for this one.
    for path in (f"/v1/floating-ips/{theirs_fip['id']}",):
        assert (await cloud.call("GET", path, token=token)).status == 404
        assert (await cloud.call("DELETE", path, token=token)).status == 404
    foreign = await cloud.call(
        "PUT", f"/v1/floating-ips/{mine[0]['id']}", token=token, json={"port_id": theirs["id"]}
    )
    assert foreign.status == 422
    assert foreign.problem_fields == ["port_id"]

    pointed = await cloud.call("PUT", fip_path, token=token, json={"port_id": first["id"]})
    assert pointed.status == 202, pointed.body
    # Pointed, but no host has plumbed it (the port is on none): DOWN.
    active = await until(cloud, fip_path, token, lambda r: r.body["port_id"] == first["id"])
    assert active.body["status"] == "DOWN"
    assert (active.body["port_id"], active.body["fixed_ip"]) == (first["id"], first["ips"][0])
    shown = await cloud.call("GET", f"/v1/ports/{first['id']}", token=token)
    assert shown.body["floating_ips"] == [{"id": mine[0]["id"], "ip": mine[0]["ip"]}]
    busy = await cloud.call(
        "PUT", f"/v1/floating-ips/{mine[1]['id']}", token=token, json={"port_id": first["id"]}
    )
    assert busy.status == 409
    assert busy.problem_fields == ["port_id"]
    assert mine[0]["id"] in busy.body["detail"]

    # Re-association moves it to the other port.
    moved = await cloud.call("PUT", fip_path, token=token, json={"port_id": second["id"]})
    assert moved.status == 202
    await until(cloud, fip_path, token, lambda r: r.body["port_id"] == second["id"])
    shown = await cloud.call("GET", f"/v1/ports/{first['id']}", token=token)
    assert shown.body["floating_ips"] == []

    # The external network is in use: 409 naming them; its address comes back once released.
    in_use = await cloud.call("DELETE", f"/v1/external-networks/{ext['id']}", token=ADMIN_TOKEN)
    assert in_use.status == 409
    assert in_use.problem_fields == ["floating_ips"]
    # A deleted port's floating IP points at nothing.
    assert (await cloud.call("DELETE", f"/v1/ports/{second['id']}", token=token)).status == 202
    down = await until(cloud, fip_path, token, lambda r: r.body["port_id"] is None)
    assert down.body["status"] == "DOWN"
    for each in [*mine, theirs_fip]:
        owner = other if each is theirs_fip else token
        path = f"/v1/floating-ips/{each['id']}"
        assert (await cloud.call("DELETE", path, token=owner)).status == 202
        await until(cloud, path, owner, lambda r: r.status == 404)
    again = await floating_ip(cloud, token, ext["id"])
    assert again["ip"] in addresses
    assert (
        await cloud.call("DELETE", f"/v1/floating-ips/{again['id']}", token=token)
    ).status == 202
    await until(cloud, f"/v1/floating-ips/{again['id']}", token, lambda r: r.status == 404)
    router_path = f"/v1/routers/{router_id}"
    detached = await cloud.call("DELETE", f"{router_path}/interfaces/{net['id']}", token=token)
    assert detached.status == 202, detached.body
    await until(cloud, router_path, token, lambda r: r.body["interfaces"] == [])
    assert (await cloud.call("DELETE", router_path, token=token)).status == 202
    await until(cloud, router_path, token, lambda r: r.status == 404)
    gone = await cloud.call("DELETE", f"/v1/external-networks/{ext['id']}", token=ADMIN_TOKEN)
    assert gone.status == 202
    path = f"/v1/external-networks/{ext['id']}"
    await until(cloud, path, ADMIN_TOKEN, lambda r: r.status == 404)
    # The log itself shows no address held twice, nor any quota overrun.
    found = await check(cloud.settings, datetime.now(UTC), scheduler=SchedulerConfig())
    assert [str(v) for v in found] == []


async def test_floating_ips_count_against_the_quota(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    ext = await external_network(cloud)
    limited = await cloud.call(
        "PUT", f"/v1/tenants/{tenant_id}/quotas", token=ADMIN_TOKEN, json={"floating_ips": 1}
    )
    assert limited.status == 200, limited.body
    await floating_ip(cloud, token, ext["id"])
    over = await cloud.call(
        "POST", "/v1/floating-ips", token=token, json={"external_network_id": ext["id"]}
    )
    assert over.status == 403
    assert over.problem_fields == ["floating_ips"]
    usage = await cloud.call("GET", "/v1/quotas", token=token)
    assert usage.body["usage"]["floating_ips"] == 1


async def test_an_instance_shows_its_floating_ip_and_carries_its_host(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    ext = await external_network(cloud)
    net = await network(cloud, token, "10.31.0.0/24")
    instance = await cloud.instance(token, network_id=net["id"])
    path = f"/v1/instances/{instance['id']}"
    await until(cloud, path, token, lambda r: bool(r.body["addresses"]))
    other = await port(cloud, token, net["id"])  # not the instance's: filtered out
    listed = await cloud.call("GET", f"/v1/ports?network_id={net['id']}", token=token)
    assert len(listed.body["items"]) == 2
    ports = await cloud.call("GET", f"/v1/ports?instance_id={instance['id']}", token=token)
    [its_port] = ports.body["items"]
    assert its_port["id"] == instance_port_id(instance["id"])
    assert other["id"] != its_port["id"]
    placed = scheduler.InstanceScheduled(
        host="hv-3", rack="r", zone="z", attempt=1, name="web-1", flavor=TINY, network=net["id"]
    )
    await cloud.feed("scheduler", [(instance["id"], placed)])
    await until(cloud, f"/v1/ports/{its_port['id']}", token, lambda r: r.body["host"] == "hv-3")

    await routed(cloud, token, ext["id"], net["id"])
    fip = await floating_ip(cloud, token, ext["id"])
    fip_path = f"/v1/floating-ips/{fip['id']}"
    reply = await cloud.call("PUT", fip_path, token=token, json={"port_id": its_port["id"]})
    assert reply.status == 202
    shown = await until(cloud, path, token, lambda r: bool(r.body["floating_ips"]))
    assert shown.body["floating_ips"] == [{"id": fip["id"], "ip": fip["ip"]}]
    await confirmed_by_its_host(cloud, token, fip["id"], its_port["id"])
    # What a host's data path will act on: the association names the port's host.
    topic = event_topic("network", cloud.namespace)
    events = await read_events(cloud.settings.bootstrap_servers, topic, REGISTRY)
    [accepted] = [e.payload for e in events if isinstance(e.payload, FloatingIpAssociationAccepted)]
    assert accepted == FloatingIpAssociationAccepted(
        port_id=its_port["id"], network_id=net["id"], fixed_ip=its_port["ips"][0], host="hv-3"
    )
    # Deleting the instance deletes its port, which drops the association.
    await cloud.feed("compute", [(instance["id"], compute.InstanceDeleted(host="hv-3"))])
    await until(cloud, fip_path, token, lambda r: r.body["status"] == "DOWN")


async def test_routers_take_an_address_and_attach_networks_one_router_each(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    _, other = await cloud.tenant()
    ext = await external_network(cloud)
    net = await network(cloud, token, "10.32.0.0/24")
    theirs = await network(cloud, other, "10.32.0.0/24")
    created = await cloud.call(
        "POST", "/v1/routers", token=token, json={"name": "edge", "external_network_id": ext["id"]}
    )
    assert created.status == 202, created.body
    path = f"/v1/routers/{created.body['id']}"
    router = (await until(cloud, path, token, lambda r: r.body["status"] == "ACTIVE")).body
    assert router["external_ip"] == "203.0.113.10"
    second = await cloud.call(
        "POST", "/v1/routers", token=token, json={"name": "b", "external_network_id": ext["id"]}
    )
    second_path = f"/v1/routers/{second.body['id']}"
    await until(cloud, second_path, token, lambda r: r.body["status"] == "ACTIVE")
    assert (await cloud.call("GET", path, token=other)).status == 404

    foreign = await cloud.call(
        "POST", f"{path}/interfaces", token=token, json={"network_id": theirs["id"]}
    )
    assert foreign.status == 422
    assert foreign.problem_fields == ["network_id"]
    added = await cloud.call(
        "POST", f"{path}/interfaces", token=token, json={"network_id": net["id"]}
    )
    assert added.status == 202, added.body
    shown = await until(cloud, path, token, lambda r: r.body["interfaces"][0]["status"] == "ACTIVE")
    assert shown.body["interfaces"] == [
        {"network_id": net["id"], "gateway_ip": "10.32.0.1", "status": "ACTIVE"}
    ]
    assert (await cloud.call("GET", f"/v1/networks/{net['id']}", token=token)).body[
        "router_id"
    ] == router["id"]
    taken = await cloud.call(
        "POST", f"{second_path}/interfaces", token=token, json={"network_id": net["id"]}
    )
    assert taken.status == 409
    assert taken.problem_fields == ["network_id"]
    busy = await cloud.call("DELETE", path, token=token)
    assert busy.status == 409
    assert busy.problem_fields == ["interfaces"]
    attached = await cloud.call("DELETE", f"/v1/networks/{net['id']}", token=token)
    assert attached.status == 409
    assert attached.problem_fields == ["router_id"]

    # A floating IP behind the interface keeps it: 409 naming it.
    behind_port = await port(cloud, token, net["id"])
    fip = await floating_ip(cloud, token, ext["id"])
    fip_path = f"/v1/floating-ips/{fip['id']}"
    await cloud.call("PUT", fip_path, token=token, json={"port_id": behind_port["id"]})
    await until(cloud, fip_path, token, lambda r: r.body["port_id"] is not None)
    interface = f"{path}/interfaces/{net['id']}"
    refused = await cloud.call("DELETE", interface, token=token)
    assert refused.status == 409
    assert refused.problem_fields == ["floating_ips"]
    assert fip["id"] in refused.body["detail"]
    await cloud.call("PUT", fip_path, token=token, json={"port_id": None})
    await until(cloud, fip_path, token, lambda r: r.body["port_id"] is None)
    assert (await cloud.call("DELETE", interface, token=token)).status == 202
    await until(cloud, path, token, lambda r: r.body["interfaces"] == [])
    assert (await cloud.call("DELETE", interface, token=token)).status == 404
    assert (await cloud.call("DELETE", path, token=token)).status == 202
    await until(cloud, path, token, lambda r: r.status == 404)
    # Its address is free again: the next holder gets it.
    again = await floating_ip(cloud, token, ext["id"])
    assert again["ip"] == "203.0.113.10"
