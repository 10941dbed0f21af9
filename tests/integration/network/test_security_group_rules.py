"""Security groups changed after their creation, an instance's groups, a port's groups: through
the HTTP API, with the real controller allocating the ports."""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.gateway.harness import Gateway
from tests.integration.network.test_network_api import network, port, until

from virga_events.catalog.network import default_security_group_id, instance_port_id

pytestmark = pytest.mark.kafka

HTTP = {"direction": "ingress", "protocol": "tcp", "port_min": 80, "remote_cidr": "0.0.0.0/0"}


async def group(gateway: Gateway, token: str, name: str, rules: list[Any]) -> dict[str, Any]:
    reply = await gateway.call(
        "POST", "/v1/security-groups", token=token, json={"name": name, "rules": rules}
    )
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


async def test_rules_are_added_and_deleted_by_id(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    _, other = await cloud.tenant()
    web = await group(cloud, token, "web", [])
    rules_path = f"/v1/security-groups/{web['id']}/rules"

    added = await cloud.call("POST", rules_path, token=token, json=HTTP)
    assert added.status == 201, added.body
    rule = added.body
    assert rule == {
        "id": rule["id"],
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_min": 80,
        "port_max": 80,
        "remote_cidr": "0.0.0.0/0",
        "remote_group": None,
    }
    shown = await cloud.call("GET", f"/v1/security-groups/{web['id']}", token=token)
    assert shown.body["rules"] == [rule]

    again = await cloud.call("POST", rules_path, token=token, json={**HTTP, "port_max": 80})
    assert again.status == 409
    assert rule["id"] in again.body["detail"]
    bad = await cloud.call("POST", rules_path, token=token, json={**HTTP, "protocol": "icmp"})
    assert bad.status == 422
    assert bad.problem_fields == ["port_min"]
    # Another tenant's group does not exist for this one, to read or to change.
    assert (await cloud.call("POST", rules_path, token=other, json=HTTP)).status == 404
    foreign = await cloud.call("DELETE", f"{rules_path}/{rule['id']}", token=other)
    assert foreign.status == 404
    default_rules = f"/v1/security-groups/{default_security_group_id(tenant_id)}/rules"
    assert (await cloud.call("POST", default_rules, token=token, json=HTTP)).status == 409

    deleted = await cloud.call("DELETE", f"{rules_path}/{rule['id']}", token=token)
    assert deleted.status == 204
    shown = await cloud.call("GET", f"/v1/security-groups/{web['id']}", token=token)
    assert shown.body["rules"] == []
    gone = await cloud.call("DELETE", f"{rules_path}/{rule['id']}", token=token)
    assert gone.status == 404


async def test_a_group_holds_at_most_100_rules(cloud: Gateway) -> None:
    _, token = await cloud.tenant()
    rules = [{**HTTP, "port_min": 1000 + n} for n in range(100)]
    full = await group(cloud, token, "full", rules)
    over = await cloud.call(
        "POST", f"/v1/security-groups/{full['id']}/rules", token=token, json=HTTP
    )
    assert over.status == 409
    assert "100 rules" in over.body["detail"]
    repeated = await cloud.call(
        "POST", "/v1/security-groups", token=token, json={"name": "x", "rules": [HTTP, HTTP]}
    )
    assert repeated.status == 422
    assert repeated.problem_fields == ["rules[1]"]


async def test_an_instance_names_its_ports_groups(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    _, other = await cloud.tenant()
    web = await group(cloud, token, "web", [HTTP])
    theirs = await group(cloud, other, "theirs", [])
    net = await network(cloud, token, "10.60.0.0/24")

    refused = await cloud.call(
        "POST",
        "/v1/instances",
        token=token,
        json={
            "name": "web",
            "flavor": "m1.small",
            "network_id": net["id"],
            "security_groups": [web["id"], theirs["id"]],
        },
    )
    assert refused.status == 422
    assert refused.problem_fields == ["security_groups[1]"]
    assert theirs["id"] in refused.body["errors"][0]["message"]
    without_network = await cloud.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": "web", "flavor": "m1.small", "security_groups": [web["id"]]},
    )
    assert without_network.status == 422
    assert without_network.problem_fields == ["security_groups"]

    default_id = default_security_group_id(tenant_id)
    instance = await cloud.instance(
        token, network_id=net["id"], security_groups=[web["id"], default_id]
    )
    port_path = f"/v1/ports/{instance_port_id(instance['id'])}"
    allocated = await until(cloud, port_path, token, lambda r: r.status == 200)
    assert allocated.body["security_groups"] == [web["id"], default_id]
    plain = await cloud.instance(token, name="plain", network_id=net["id"])
    plain_port = f"/v1/ports/{instance_port_id(plain['id'])}"
    allocated = await until(cloud, plain_port, token, lambda r: r.status == 200)
    assert allocated.body["security_groups"] == [default_id]


async def test_a_ports_groups_are_changed(cloud: Gateway) -> None:
    tenant_id, token = await cloud.tenant()
    _, other = await cloud.tenant()
    web = await group(cloud, token, "web", [HTTP])
    net = await network(cloud, token, "10.70.0.0/24")
    plugged = await port(cloud, token, net["id"])
    path = f"/v1/ports/{plugged['id']}"

    changed = await cloud.call("PUT", path, token=token, json={"security_groups": [web["id"]]})
    assert changed.status == 200, changed.body
    assert changed.body["security_groups"] == [web["id"]]
    assert (await cloud.call("GET", path, token=token)).body["security_groups"] == [web["id"]]
    in_use = await cloud.call("DELETE", f"/v1/security-groups/{web['id']}", token=token)
    assert in_use.status == 409

    unknown = await cloud.call("PUT", path, token=token, json={"security_groups": ["nope"]})
    assert unknown.status == 422
    assert unknown.problem_fields == ["security_groups[0]"]
    empty = await cloud.call("PUT", path, token=token, json={"security_groups": []})
    assert empty.status == 422
    foreign = await cloud.call("PUT", path, token=other, json={"security_groups": [web["id"]]})
    assert foreign.status == 404

    default_id = default_security_group_id(tenant_id)
    back = await cloud.call("PUT", path, token=token, json={"security_groups": [default_id]})
    assert back.body["security_groups"] == [default_id]
    freed = await cloud.call("DELETE", f"/v1/security-groups/{web['id']}", token=token)
    assert freed.status == 204
