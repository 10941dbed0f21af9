"""Deleting a server group: refused while an instance is in it, and then gone for good."""

from __future__ import annotations

import pytest
from tests.integration.gateway.harness import Gateway, wait_until

from virga_events.catalog import compute

pytestmark = pytest.mark.kafka


async def test_a_server_group_is_deleted_once_it_has_no_members(gateway: Gateway) -> None:
    _, token = await gateway.tenant()
    _, other = await gateway.tenant()
    body = {"name": "db", "policy": "anti-affinity"}
    group = (await gateway.call("POST", "/v1/server-groups", token=token, json=body)).body
    member = await gateway.instance(token, "db-1", server_group=group["id"])

    busy = await gateway.call("DELETE", f"/v1/server-groups/{group['id']}", token=token)
    assert busy.status == 409, busy.body
    assert busy.problem_fields == ["members"]
    assert member["id"] in busy.body["detail"]
    foreign = await gateway.call("DELETE", f"/v1/server-groups/{group['id']}", token=other)
    assert foreign.status == 404

    assert (
        await gateway.call("DELETE", f"/v1/instances/{member['id']}", token=token)
    ).status == 202
    await gateway.feed("compute", [(member["id"], compute.InstanceDeleted(host=None))])

    def empty() -> bool:
        assert gateway.runner is not None
        return not gateway.runner.state.group_members.get(group["id"])

    await wait_until(empty)
    deleted = await gateway.call("DELETE", f"/v1/server-groups/{group['id']}", token=token)
    assert deleted.status == 204, deleted.body
    assert (
        await gateway.call("GET", f"/v1/server-groups/{group['id']}", token=token)
    ).status == 404
    listed = await gateway.call("GET", "/v1/server-groups", token=token)
    assert listed.body["items"] == []
    again = await gateway.call("DELETE", f"/v1/server-groups/{group['id']}", token=token)
    assert again.status == 404
    late = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": "db-2", "flavor": "m1.small", "server_group": group["id"]},
    )
    assert late.status == 422
    assert late.problem_fields == ["server_group"]
