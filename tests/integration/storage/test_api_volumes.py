"""Volumes and images through the HTTP API, on real Kafka and the real Ceph cluster: the
gateway records requests, the storage service drives RBD, the gateway shows the outcome."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator

import pytest
from tests.integration.gateway.harness import wait_until
from tests.integration.storage.gateway_storage import (
    IMAGE,
    Cloud,
    create_volume,
    running_cloud,
    upload,
    wait_gone,
)

from virga_devstack.ceph import CephCluster
from virga_events.catalog.storage import (
    VolumeSnapshotDeletionRequested,
    rbd_image_name,
    rbd_volume_name,
)
from virga_storage.drivers.base import BASE_SNAPSHOT
from virga_storage.effects.intents import snapshot_name
from virga_storage.effects.volumes import GiB

pytestmark = pytest.mark.kafka


@pytest.fixture
async def cloud(kafka_bootstrap: str, ceph_cluster: CephCluster) -> AsyncIterator[Cloud]:
    async with running_cloud(kafka_bootstrap, ceph_cluster) as running:
        yield running


async def test_an_image_upload_becomes_a_protected_rbd_image_with_its_sha256(
    cloud: Cloud,
) -> None:
    _, token = await cloud.gateway.tenant()
    image = await upload(cloud, token, IMAGE)
    assert image["status"] == "available"
    assert image["sha256"] == hashlib.sha256(IMAGE).hexdigest()
    assert (image["size_bytes"], image["visibility"], image["disk_format"]) == (
        len(IMAGE),
        "private",
        "raw",
    )
    name = rbd_image_name(image["id"])
    info = await cloud.ceph.info(name)
    assert info.size_bytes == len(IMAGE)
    assert [(s.name, s.protected) for s in info.snapshots] == [(BASE_SNAPSHOT, True)]
    assert await cloud.ceph.read(name, 0, len(IMAGE)) == IMAGE
    listed = await cloud.gateway.call("GET", "/v1/images", token=token)
    assert [i["id"] for i in listed.body["items"]] == [image["id"]]

    deleted = await cloud.gateway.call("DELETE", f"/v1/images/{image['id']}", token=token)
    assert deleted.status == 202, deleted.body
    assert deleted.body["status"] == "deleting"
    await wait_gone(cloud, token, f"/v1/images/{image['id']}")
    assert name not in await cloud.ceph.list()
    assert (await cloud.audit()).clean


async def test_volumes_clone_snapshot_extend_and_delete_through_the_api(cloud: Cloud) -> None:
    _, token = await cloud.gateway.tenant()
    image = await upload(cloud, token, IMAGE)
    volume = await create_volume(cloud, token, image=image["id"])
    assert (volume["parent"], volume["clone_depth"], volume["size_gb"]) == (
        f"image:{image['id']}",
        1,
        1,
    )
    assert await cloud.ceph.read(rbd_volume_name(volume["id"]), 0, len(IMAGE)) == IMAGE

    taken = await cloud.gateway.call(
        "POST", f"/v1/volumes/{volume['id']}/snapshots", token=token, json={"name": "nightly"}
    )
    assert taken.status == 202, taken.body
    snapshot_id = taken.body["id"]
    shown = await cloud.wait_volume(token, volume["id"], "available")
    await wait_snapshot(cloud, token, volume["id"], snapshot_id)
    child = await create_volume(cloud, token, snapshot=snapshot_id, name="child")
    assert (child["parent"], child["clone_depth"]) == (f"snapshot:{snapshot_id}", 2)
    assert shown["snapshots"][0]["name"] == "nightly"

    grown = await cloud.gateway.call(
        "POST",
        f"/v1/volumes/{child['id']}/actions",
        token=token,
        json={"action": "extend", "size_gb": 2},
    )
    assert grown.status == 202, grown.body
    await wait_size(cloud, token, child["id"], 2)
    assert (await cloud.ceph.info(rbd_volume_name(child["id"]))).size_bytes == 2 * GiB
    for size in (2, 1):  # the same size, and a shrink
        refused = await cloud.gateway.call(
            "POST",
            f"/v1/volumes/{child['id']}/actions",
            token=token,
            json={"action": "extend", "size_gb": size},
        )
        assert refused.status == 422, refused.body
        assert refused.problem_fields == ["size_gb"]

    # The image has clones: refused, naming them.
    refused = await cloud.gateway.call("DELETE", f"/v1/images/{image['id']}", token=token)
    assert refused.status == 409, refused.body
    assert volume["id"] in refused.body["detail"]

    # Deleting the parent volume flattens its clone first.
    deleted = await cloud.gateway.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_gone(cloud, token, f"/v1/volumes/{volume['id']}")
    flat = await cloud.wait_volume(token, child["id"], "available")
    assert (flat["parent"], flat["clone_depth"]) == (None, 0)
    assert (await cloud.ceph.info(rbd_volume_name(child["id"]))).parent is None
    assert rbd_volume_name(volume["id"]) not in await cloud.ceph.list()
    assert await cloud.ceph.read(rbd_volume_name(child["id"]), 0, len(IMAGE)) == IMAGE

    # No clone left: the image goes, with its base snapshot.
    deleted = await cloud.gateway.call("DELETE", f"/v1/images/{image['id']}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_gone(cloud, token, f"/v1/images/{image['id']}")
    deleted = await cloud.gateway.call("DELETE", f"/v1/volumes/{child['id']}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_gone(cloud, token, f"/v1/volumes/{child['id']}")
    names = await cloud.ceph.list()
    assert rbd_image_name(image["id"]) not in names
    assert rbd_volume_name(child["id"]) not in names
    assert (await cloud.audit()).clean


async def wait_snapshot(cloud: Cloud, token: str, volume_id: str, snapshot_id: str) -> None:
    for _ in range(300):
        shown = await cloud.gateway.call("GET", f"/v1/volumes/{volume_id}", token=token)
        statuses = {s["id"]: s["status"] for s in shown.body["snapshots"]}
        if statuses.get(snapshot_id) == "available":
            rbd = await cloud.ceph.info(rbd_volume_name(volume_id))
            assert snapshot_name(snapshot_id) in [s.name for s in rbd.snapshots]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"snapshot {snapshot_id} not available")


async def wait_size(cloud: Cloud, token: str, volume_id: str, size_gb: int) -> None:
    for _ in range(300):
        shown = await cloud.gateway.call("GET", f"/v1/volumes/{volume_id}", token=token)
        if shown.body["size_gb"] == size_gb:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"volume {volume_id} never reached {size_gb} GiB")


async def test_a_snapshot_is_deleted_once_no_volume_is_a_clone_of_it(cloud: Cloud) -> None:
    _, token = await cloud.gateway.tenant()
    volume = await create_volume(cloud, token, name="data")
    path = f"/v1/volumes/{volume['id']}/snapshots"
    taken = await cloud.gateway.call("POST", path, token=token, json={"name": "s1"})
    assert taken.status == 202, taken.body
    snapshot_id = taken.body["id"]
    await wait_snapshot(cloud, token, volume["id"], snapshot_id)
    child = await create_volume(cloud, token, snapshot=snapshot_id, name="child")

    # A clone reads from it: refused, naming the clone.
    refused = await cloud.gateway.call("DELETE", f"{path}/{snapshot_id}", token=token)
    assert (refused.status, refused.problem_fields) == (409, ["volumes"]), refused.body
    assert child["id"] in refused.body["detail"]
    # Asked past the gateway's check (a clone the gateway had not seen yet): the storage
    # service refuses too, and the pool keeps the snapshot.
    assert cloud.storage is not None
    storage = cloud.storage
    asked = VolumeSnapshotDeletionRequested(snapshot_id=snapshot_id)
    await cloud.feed("gateway", volume["id"], asked, volume["tenant_id"])
    await wait_until(lambda: not storage.state.volumes[volume["id"]].snapshot_deletions)
    assert snapshot_id in storage.state.snapshots
    info = await cloud.ceph.info(rbd_volume_name(volume["id"]))
    assert snapshot_name(snapshot_id) in [s.name for s in info.snapshots]
    projection = cloud.gateway.runner
    assert projection is not None
    snapshots = projection.state.volumes[volume["id"]].snapshots
    await wait_until(lambda: snapshots[snapshot_id].fault is not None)
    shown = await cloud.gateway.call("GET", f"/v1/volumes/{volume['id']}", token=token)
    [kept] = shown.body["snapshots"]
    assert kept["status"] == "available"
    assert kept["fault"] == f"delete: volumes are still clones of it: {child['id']}"

    # Once the clone is gone, the snapshot goes; nothing can be cloned from it any more.
    gone = await cloud.gateway.call("DELETE", f"/v1/volumes/{child['id']}", token=token)
    assert gone.status == 202, gone.body
    await wait_gone(cloud, token, f"/v1/volumes/{child['id']}")
    deleted = await cloud.gateway.call("DELETE", f"{path}/{snapshot_id}", token=token)
    assert (deleted.status, deleted.body["status"]) == (202, "deleting"), deleted.body
    for _ in range(300):
        shown = await cloud.gateway.call("GET", f"/v1/volumes/{volume['id']}", token=token)
        if not shown.body["snapshots"]:
            break
        await asyncio.sleep(0.05)
    assert shown.body["snapshots"] == []
    assert (await cloud.ceph.info(rbd_volume_name(volume["id"]))).snapshots == ()
    assert (await cloud.audit()).clean  # the log accounts for the snapshot's going
    again = await cloud.gateway.call("DELETE", f"{path}/{snapshot_id}", token=token)
    assert again.status == 404, again.body
    clone = await cloud.gateway.call(
        "POST",
        "/v1/volumes",
        token=token,
        json={"name": "late", "size_gb": 1, "snapshot": snapshot_id},
    )
    assert (clone.status, clone.problem_fields) == (422, ["snapshot"]), clone.body
    unknown = await cloud.gateway.call("DELETE", f"{path}/{uuid.uuid4()}", token=token)
    assert unknown.status == 404, unknown.body

    gone = await cloud.gateway.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)
    assert gone.status == 202, gone.body
    await wait_gone(cloud, token, f"/v1/volumes/{volume['id']}")
    assert (await cloud.audit()).clean
