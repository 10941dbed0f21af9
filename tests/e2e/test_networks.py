"""Networks end to end: HTTP → gateway → the network controller, each its own OS process; the
controller killed (SIGKILL) while ports are being asked for hands out no address twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.support.api import Api, new_tenant
from tests.support.stack import HostSpec, Stack

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(kafka_bootstrap, tmp_path_factory.mktemp("stack"), (HostSpec("host-a", "r1"),))
    with stack.running():
        yield stack


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "tenant") as api:
        yield api


async def settled(api: Api, path: str, busy: str = "BUILDING", seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        view = await api.call("GET", path)
        if view["status"] != busy:
            return view
        assert time.monotonic() < deadline, f"{path} stayed {busy}"
        await asyncio.sleep(0.1)


async def test_a_killed_controller_resumes_without_handing_out_an_address_twice(
    stack: Stack, tenant: Api
) -> None:
    network = await tenant.call("POST", "/v1/networks", {"name": "web", "cidr": "10.9.0.0/24"})
    network = await settled(tenant, f"/v1/networks/{network['id']}")
    assert network["status"] == "ACTIVE"

    async def port() -> Any:
        return await tenant.call("POST", "/v1/ports", {"network_id": network["id"]})

    first = await asyncio.gather(*(port() for _ in range(15)))
    stack.processes["network"].kill()
    later = await asyncio.gather(*(port() for _ in range(15)))  # accepted while it is down
    stack.restart("network")
    views = [await settled(tenant, f"/v1/ports/{p['id']}") for p in [*first, *later]]
    assert {v["status"] for v in views} == {"DOWN"}
    addresses = [v["ips"][0] for v in views]
    assert len(set(addresses)) == 30
    assert set(addresses) == {f"10.9.0.{i}" for i in range(2, 32)}
    assert len({v["mac"] for v in views}) == 30

    instance = await tenant.create_instance("web-1", network=network["id"])
    deadline = time.monotonic() + 60
    while not (shown := await tenant.instance(instance["id"]))["addresses"]:
        assert time.monotonic() < deadline, "the instance never showed its address"
        await asyncio.sleep(0.1)
    assert shown["addresses"][0]["ip"] == "10.9.0.32"
