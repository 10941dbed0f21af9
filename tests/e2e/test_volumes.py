"""Volumes and images end to end on the real Ceph cluster: every service its own process,
HTTP in, RBD images out, and a pool audit that finds nothing the log cannot account for."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from tests.support.api import Api, new_tenant
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_devstack.ceph import CephCluster
from virga_events.catalog.storage import rbd_image_name, rbd_volume_name
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e]

IMAGE = b"virga e2e image " * 65536


@pytest.fixture(scope="module")
def stack(
    kafka_bootstrap: str, ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("stack"),
        (HostSpec("host-a", "rack-1"),),
        **on_ceph(ceph_cluster),
    )
    with stack.running():
        yield stack


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "tenant") as api:
        yield api


async def wait_for(tenant: Api, path: str, field: str, wanted: set[Any]) -> Any:
    deadline = time.monotonic() + 60
    while True:
        view = await tenant.call("GET", path, expect=(200, 404))
        value = None if view.get("type", "").endswith("/not-found") else view.get(field)
        if value in wanted:
            return view
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path}: {field} is {value}, not one of {wanted}")
        await asyncio.sleep(0.2)


async def wait_gone(tenant: Api, path: str) -> None:
    deadline = time.monotonic() + 60
    while (await tenant.call("GET", path, expect=(200, 404))).get("status") != 404:
        assert time.monotonic() < deadline, f"{path} is still there"
        await asyncio.sleep(0.2)


async def test_images_volumes_and_boot_volumes_leave_the_pool_as_the_log_says(
    stack: Stack, tenant: Api, ceph_pool: RbdDriver
) -> None:
    async with tenant.session.post(
        f"{stack.gateway_url}/v1/images?name=debian",
        data=IMAGE,
        headers={"Authorization": f"Bearer {tenant.token}"},
    ) as reply:
        assert reply.status == 201, await reply.text()
        image = await reply.json()
    volume = await tenant.call(
        "POST", "/v1/volumes", {"name": "data", "size_gb": 2, "image": image["id"]}
    )
    volume = await wait_for(tenant, f"/v1/volumes/{volume['id']}", "status", {"available"})
    assert volume["parent"] == f"image:{image['id']}"
    assert await ceph_pool.read(rbd_volume_name(volume["id"]), 0, len(IMAGE)) == IMAGE

    instance = await tenant.create_instance("web", image=image["id"])
    boot = await wait_for(tenant, f"/v1/volumes/{instance['id']}", "status", {"in-use"})
    assert boot["boot_of"] == instance["id"]
    await tenant.call("DELETE", f"/v1/instances/{instance['id']}")
    await tenant.call("DELETE", f"/v1/volumes/{volume['id']}")
    await wait_gone(tenant, f"/v1/volumes/{instance['id']}")
    await wait_gone(tenant, f"/v1/volumes/{volume['id']}")
    await tenant.call("DELETE", f"/v1/images/{image['id']}")
    deadline = time.monotonic() + 60
    while rbd_image_name(image["id"]) in await ceph_pool.list():
        assert time.monotonic() < deadline, "the image is still in the pool"
        await asyncio.sleep(0.2)
    audit = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert audit.clean, audit
