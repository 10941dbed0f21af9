"""Every resource type, from the route table: another tenant's resource does not exist.

For each operation on `/v1/<collection>/{id}...`, tenant B names tenant A's resource and gets
404, the same answer as for an id that was never used; A's resource is unchanged afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.gateway.harness import ADMIN_TOKEN
from tests.integration.hostile.cloud import (
    NEVER_USED,
    OWNED,
    ROUTES,
    SHARED,
    Cloud,
    collection_of,
)

pytestmark = pytest.mark.kafka

VALID_BODIES: dict[str, dict[str, Any]] = {
    "InstanceAction": {"action": "stop"},
    "CreateVolumeSnapshot": {"name": "snap"},
    "VolumeAction": {"action": "extend", "size_gb": 2},
    "RuleBody": {"direction": "ingress", "protocol": "tcp", "port_min": 443},
    "UpdatePort": {"security_groups": [NEVER_USED]},
    "UpdateFloatingIp": {"port_id": None},
}
"""A well-formed body for each operation on an existing resource, so that only ownership
can refuse it (AttachVolume takes the caller's own volume, below)."""

TENANT_ROUTES = [
    r
    for r in ROUTES
    if r.access == "tenant" and collection_of(r) and collection_of(r) not in SHARED
]


def test_every_resource_type_with_an_id_is_covered() -> None:
    missing = {collection_of(r) for r in TENANT_ROUTES} - set(OWNED)
    assert not missing, f"teach tests/integration/hostile/cloud.py to create: {missing}"
    bodies = {r.request.__name__ for r in TENANT_ROUTES if r.request is not None}
    known = {*VALID_BODIES, "AttachVolume", "AddRouterInterface"}
    assert bodies <= known, bodies - known


def body_for(route_request: Any, cloud: Cloud) -> dict[str, Any] | None:
    if route_request is None:
        return None
    if route_request.__name__ == "AttachVolume":
        return {"volume_id": cloud.b.owns["volumes"]}
    if route_request.__name__ == "AddRouterInterface":
        return {"network_id": cloud.b.owns["networks"]}
    return VALID_BODIES[route_request.__name__]


async def test_another_tenants_resources_do_not_exist(cloud: Cloud) -> None:
    refused: list[str] = []
    for route in TENANT_ROUTES:
        path = cloud.path(route, cloud.a)
        if "{volume_id}" in route.path:  # detach A's volume from A's instance
            path = path.replace(cloud.b.owns["volumes"], cloud.a.owns["volumes"])
        if "{network_id}" in route.path:  # detach A's network from A's router
            path = path.replace(cloud.b.owns["networks"], cloud.a.owns["networks"])
        body = body_for(route.request, cloud)
        reply = await cloud.call(route.method, path, cloud.b.token, json=body)
        if reply.status != 404:
            refused.append(f"{route.method} {route.path}: {reply.status} {reply.body}")
        else:
            assert reply.headers["Content-Type"].startswith("application/problem+json")
            never_used = await cloud.call(
                route.method,
                route.path.format(
                    id=NEVER_USED,
                    volume_id=NEVER_USED,
                    snapshot_id=NEVER_USED,
                    name=NEVER_USED,
                    rule_id=NEVER_USED,
                    network_id=NEVER_USED,
                ),
                cloud.b.token,
                json=body,
            )
            assert never_used.status == 404, (route.path, never_used.body)
            # Same words either way, but for the id: nothing tells B the resource exists.
            assert reply.body["title"] == never_used.body["title"]
    assert not refused, "\n".join(refused)
    for collection, resource in cloud.a.owns.items():
        if collection == "tokens":
            continue
        seen = await cloud.call("GET", f"/v1/{collection}/{resource}", cloud.a.token)
        assert seen.status == 200, (collection, seen.body)
        assert seen.body.get("status") not in ("DELETING", "DELETED", "STOPPING"), seen.body


async def test_another_tenants_resources_are_absent_from_lists(cloud: Cloud) -> None:
    for collection, resource in cloud.a.owns.items():
        if collection == "tokens":
            continue
        listed = await cloud.call("GET", f"/v1/{collection}", cloud.b.token)
        assert listed.status == 200, (collection, listed.body)
        assert resource not in str(listed.body), collection


async def test_another_tenants_resources_cannot_be_named_in_a_body(cloud: Cloud) -> None:
    a, b = cloud.a.owns, cloud.b
    attempts = [
        (
            "POST",
            "/v1/instances",
            {"name": "x", "flavor": "m1.small", "server_group": a["server-groups"]},
        ),
        ("POST", "/v1/instances", {"name": "x", "flavor": "m1.small", "network": a["networks"]}),
        (
            "POST",
            "/v1/instances",
            {"name": "x", "flavor": "m1.small", "network_id": a["networks"]},
        ),
        ("POST", "/v1/instances", {"name": "x", "flavor": "m1.small", "image": a["images"]}),
        ("POST", "/v1/instances", {"name": "x", "flavor": "m1.small", "key_name": a["keypairs"]}),
        ("POST", "/v1/ports", {"network_id": a["networks"]}),
        ("PUT", f"/v1/floating-ips/{b.owns['floating-ips']}", {"port_id": a["ports"]}),
        ("POST", f"/v1/routers/{b.owns['routers']}/interfaces", {"network_id": a["networks"]}),
        (
            "POST",
            "/v1/ports",
            {"network_id": b.owns["networks"], "security_groups": [a["security-groups"]]},
        ),
        ("POST", "/v1/volumes", {"name": "x", "size_gb": 1, "image": a["images"]}),
        ("POST", f"/v1/instances/{b.owns['instances']}/volumes", {"volume_id": a["volumes"]}),
        (
            "POST",
            "/v1/security-groups",
            {
                "name": "x",
                "rules": [{"direction": "ingress", "remote_group": a["security-groups"]}],
            },
        ),
        ("POST", "/v1/instances", {"name": "x", "flavor": "m1.small", "tenant_id": cloud.a.id}),
        (
            "POST",
            "/v1/instances",
            {
                "name": "x",
                "flavor": "m1.small",
                "network_id": b.owns["networks"],
                "security_groups": [a["security-groups"]],
            },
        ),
        ("PUT", f"/v1/ports/{b.owns['ports']}", {"security_groups": [a["security-groups"]]}),
        (
            "POST",
            f"/v1/security-groups/{b.owns['security-groups']}/rules",
            {"direction": "ingress", "remote_group": a["security-groups"]},
        ),
    ]
    accepted = []
    for method, path, body in attempts:
        reply = await cloud.call(method, path, b.token, json=body)
        if not 400 <= reply.status < 500:
            accepted.append(f"{method} {path} {body}: {reply.status} {reply.body}")
    assert not accepted, "\n".join(accepted)


async def test_another_tenant_cannot_be_named_in_a_query(cloud: Cloud) -> None:
    """Operations taking `tenant_id` (admins choose whose) or another resource in the query
    reveal nothing of tenant A to tenant B."""
    a, b = cloud.a, cloud.b
    queried = [r for r in ROUTES if any(q.name == "tenant_id" for q in r.query)]
    assert queried, "no operation takes tenant_id any more: revisit this test"
    leaks = []
    for route in queried:
        path = cloud.path(route, b)
        if route.method == "POST":
            path += "&" if "?" in path else "?"
            path += "name=x"
        reply = await cloud.call(
            route.method, f"{path}{'&' if '?' in path else '?'}tenant_id={a.id}", b.token
        )
        text = str(reply.body)
        # A 404 may echo the id it was given, as for any tenant that does not exist.
        creating = route.method == "POST" and not 400 <= reply.status < 500
        if (
            creating
            or any(r in text for r in a.owns.values())
            or (reply.status < 300 and a.id in text)
        ):
            leaks.append(f"{route.method} {route.path}?tenant_id=A: {reply.status} {reply.body}")
    ports = await cloud.call("GET", f"/v1/ports?network_id={a.owns['networks']}", b.token)
    if a.owns["ports"] in str(ports.body):
        leaks.append(f"GET /v1/ports?network_id=A's: {ports.status} {ports.body}")
    assert not leaks, "\n".join(leaks)


async def test_a_tenant_cannot_delete_another_tenant_nor_itself(cloud: Cloud) -> None:
    """`DELETE /v1/tenants/{id}` is the admins': a tenant's token gets 403 for A, for itself and
    for a tenant that never existed, and A is untouched (its token works, it is still listed)."""
    b = cloud.b
    for target in (cloud.a.id, b.id, NEVER_USED):
        reply = await cloud.call("DELETE", f"/v1/tenants/{target}", b.token)
        assert reply.status == 403, (target, reply.status, reply.body)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
    assert (await cloud.call("GET", "/v1/flavors", cloud.a.token)).status == 200
    assert (await cloud.call("GET", "/v1/flavors", b.token)).status == 200
    # The admin's answer for A, which owns one of everything, names what it owns: 409.
    refused = await cloud.call("DELETE", f"/v1/tenants/{cloud.a.id}", ADMIN_TOKEN)
    assert refused.status == 409, refused.body
    assert {e["field"] for e in refused.body["errors"]} >= {"instances", "volumes", "networks"}


async def test_tenants_may_not_drain_a_host(cloud: Cloud) -> None:
    """Draining is an admin's: a tenant gets 403 and the host stays as it was."""
    path = f"/v1/hosts/{cloud.host}/actions"
    for tenant in (cloud.a, cloud.b):
        reply = await cloud.call("POST", path, tenant.token, json={"action": "drain"})
        assert reply.status == 403, reply.body
        assert reply.headers["Content-Type"].startswith("application/problem+json")
    listed = await cloud.call("GET", "/v1/hosts", ADMIN_TOKEN)
    (host,) = [h for h in listed.body["items"] if h["name"] == cloud.host]
    assert host["drain"] is None
    assert host["enabled"] is True


async def test_tenants_may_not_see_nor_execute_a_rebalance(cloud: Cloud) -> None:
    """Rebalancing is an admin's: the plan names every tenant's instances and hosts, so a
    tenant gets 403 for both, and nothing is executed."""
    for tenant in (cloud.a, cloud.b):
        for method in ("GET", "POST"):
            reply = await cloud.call(method, "/v1/rebalance", tenant.token)
            assert reply.status == 403, (method, reply.body)
            assert reply.headers["Content-Type"].startswith("application/problem+json")
    shown = await cloud.call("GET", "/v1/rebalance", ADMIN_TOKEN)
    assert shown.status == 200, shown.body
    assert shown.body["last_run"] is None


async def test_tenants_may_not_evacuate_an_instance(cloud: Cloud) -> None:
    """Evacuation is an admin's: a tenant gets 403, for its own instance and another's, with
    or without a host, and the instance is left as it was (no evacuation in its history)."""
    instance = cloud.a.owns["instances"]
    path = f"/v1/instances/{instance}/actions"
    for tenant in (cloud.a, cloud.b):
        for body in ({"action": "evacuate"}, {"action": "evacuate", "host": cloud.host}):
            reply = await cloud.call("POST", path, tenant.token, json=body)
            assert reply.status == 403, reply.body
            assert reply.headers["Content-Type"].startswith("application/problem+json")
    history = await cloud.call("GET", f"/v1/instances/{instance}/events", ADMIN_TOKEN)
    assert "EvacuationRequested" not in {entry["type"] for entry in history.body}


async def test_another_tenants_instance_cannot_be_resized(cloud: Cloud) -> None:
    """A resize names the instance in its path: another tenant's is 404, as an id never used,
    and it keeps its flavor."""
    instance = cloud.a.owns["instances"]
    body = {"action": "resize", "flavor": "m1.medium"}
    for target in (instance, NEVER_USED):
        path = f"/v1/instances/{target}/actions"
        reply = await cloud.call("POST", path, cloud.b.token, json=body)
        assert reply.status == 404, reply.body
        assert reply.headers["Content-Type"].startswith("application/problem+json")
    seen = await cloud.call("GET", f"/v1/instances/{instance}", cloud.a.token)
    assert seen.body["status"] != "RESIZING", seen.body
    assert seen.body["flavor"]["name"] != "m1.medium", seen.body
