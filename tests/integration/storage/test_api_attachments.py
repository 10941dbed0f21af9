"""Attachments, boot volumes and the refusals of the volume API, on real Kafka and Ceph.

The compute agents' outcomes (VolumeAttached...) and the scheduler's placements are written
by the test as those services would; the storage service and the gateway are the real ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.storage.gateway_storage import (
    IMAGE,
    Cloud,
    create_volume,
    running_cloud,
    upload,
    wait_gone,
)
from tests.support.kafka import read_events

from virga_devstack.ceph import CephCluster
from virga_eventlog import event_topic
from virga_events import REGISTRY
from virga_events.catalog import Flavor
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeDetached,
)
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import rbd_volume_name

pytestmark = pytest.mark.kafka


@pytest.fixture
async def cloud(kafka_bootstrap: str, ceph_cluster: CephCluster) -> AsyncIterator[Cloud]:
    async with running_cloud(kafka_bootstrap, ceph_cluster) as running:
        yield running


async def test_a_volume_attaches_and_detaches_through_the_compute_agent(cloud: Cloud) -> None:
    api = cloud.gateway
    tenant, token = await api.tenant()
    _, other_token = await api.tenant()
    instance = await api.instance(token, "web-1")
    spare = await api.instance(token, "web-2")
    volume = await create_volume(cloud, token)
    path = f"/v1/instances/{instance['id']}/volumes"

    # Another tenant sees neither the instance nor the volume.
    foreign = await api.call("POST", path, token=other_token, json={"volume_id": volume["id"]})
    assert foreign.status == 404, foreign.body
    theirs = await create_volume(cloud, other_token, name="theirs")
    refused = await api.call("POST", path, token=token, json={"volume_id": theirs["id"]})
    assert (refused.status, refused.problem_fields) == (422, ["volume_id"])

    asked = await api.call("POST", path, token=token, json={"volume_id": volume["id"]})
    assert asked.status == 202, asked.body
    assert asked.body["status"] == "attaching"
    again = f"/v1/instances/{spare['id']}/volumes"
    busy = await api.call("POST", again, token=token, json={"volume_id": volume["id"]})
    assert busy.status == 409, busy.body
    assert (await api.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)).status == 409
    requests = await read_events(cloud.bootstrap, event_topic("gateway", cloud.namespace), REGISTRY)
    [attach] = [e for e in requests if e.type == "VolumeAttachRequested"]
    assert (attach.aggregate_id, attach.payload.instance_id) == (volume["id"], instance["id"])
    assert attach.tenant_id == tenant

    attached = VolumeAttached(instance_id=instance["id"], host="hv-1", target_dev="vdb")
    await cloud.feed("compute", volume["id"], attached, tenant)
    shown = await cloud.wait_volume(token, volume["id"], "in-use")
    assert shown["attachments"] == [
        {"instance_id": instance["id"], "host": "hv-1", "device": "vdb"}
    ]
    shown_instance = await api.call("GET", f"/v1/instances/{instance['id']}", token=token)
    assert shown_instance.body["volumes"] == [{"volume_id": volume["id"], "device": "vdb"}]
    deleting = await api.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)
    assert deleting.status == 409, deleting.body
    assert instance["id"] in deleting.body["detail"]
    wrong = await api.call("DELETE", f"{again}/{volume['id']}", token=token)
    assert wrong.status == 404, wrong.body

    detach = await api.call("DELETE", f"{path}/{volume['id']}", token=token)
    assert (detach.status, detach.body["status"]) == (202, "detaching")
    detached = VolumeDetached(instance_id=instance["id"], host="hv-1")
    await cloud.feed("compute", volume["id"], detached, tenant)
    shown = await cloud.wait_volume(token, volume["id"], "available")
    assert shown["attachments"] == []

    # A failed attach leaves the volume available, saying why.
    await api.call("POST", again, token=token, json={"volume_id": volume["id"]})
    failed = VolumeAttachmentFailed(
        instance_id=spare["id"], operation="attach", reason="no free target"
    )
    await cloud.feed("compute", volume["id"], failed, tenant)
    shown = await cloud.wait_volume(token, volume["id"], "available")
    assert shown["fault"] == "attach: no free target"

    deleted = await api.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_gone(cloud, token, f"/v1/volumes/{volume['id']}")
    assert rbd_volume_name(volume["id"]) not in await cloud.ceph.list()


async def test_a_boot_volume_is_in_use_until_its_instance_is_deleted(cloud: Cloud) -> None:
    api = cloud.gateway
    tenant, token = await api.tenant()
    image = await upload(cloud, token, IMAGE)
    instance = await api.instance(token, "web-1", image=image["id"])
    flavor = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=2)
    placed = InstanceScheduled(
        host="hv-1", rack="r1", zone="az1", attempt=1, name="web-1", flavor=flavor,
        image=image["id"],
    )  # fmt: skip
    await cloud.feed("scheduler", instance["id"], placed, tenant)
    boot = await cloud.wait_volume(token, instance["id"], "in-use")
    assert (boot["boot_of"], boot["size_gb"], boot["parent"]) == (
        instance["id"],
        2,
        f"image:{image['id']}",
    )
    assert boot["attachments"][0]["device"] == "vda"
    listed = await api.call("GET", "/v1/volumes", token=token)
    assert [v["id"] for v in listed.body["items"]] == [instance["id"]]
    refused = await api.call("DELETE", f"/v1/volumes/{instance['id']}", token=token)
    assert refused.status == 409, refused.body
    refused = await api.call("DELETE", f"/v1/images/{image['id']}", token=token)
    assert refused.status == 409, refused.body
    assert instance["id"] in refused.body["detail"]

    await cloud.feed("compute", instance["id"], InstanceDeleted(host="hv-1"), tenant)
    await wait_gone(cloud, token, f"/v1/volumes/{instance['id']}")
    assert rbd_volume_name(instance["id"]) not in await cloud.ceph.list()
    deleted = await api.call("DELETE", f"/v1/images/{image['id']}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_gone(cloud, token, f"/v1/images/{image['id']}")
    assert (await cloud.audit()).clean


async def test_volume_requests_that_cannot_be_met_are_refused_naming_the_field(
    cloud: Cloud,
) -> None:
    api = cloud.gateway
    _, token = await api.tenant()
    _, other_token = await api.tenant()
    mine = await upload(cloud, token, IMAGE)
    theirs = await upload(cloud, other_token, IMAGE, name="theirs")

    async def refused(body: dict[str, object], field: str, as_token: str = token) -> None:
        reply = await api.call(
            "POST", "/v1/volumes", token=as_token, json={"name": "d", "size_gb": 1, **body}
        )
        assert (reply.status, reply.problem_fields) == (422, [field]), reply.body

    await refused({"image": theirs["id"]}, "image")
    await refused({"image": "no-such-image"}, "image")
    await refused({"image": mine["id"], "snapshot": "s"}, "snapshot")
    await refused({"size_gb": 0}, "size_gb")
    volume = await create_volume(cloud, token, image=mine["id"])
    taken = await api.call(
        "POST", f"/v1/volumes/{volume['id']}/snapshots", token=token, json={"name": "s1"}
    )
    assert taken.status == 202, taken.body
    await refused({"snapshot": taken.body["id"]}, "snapshot", other_token)
    assert (await api.call("GET", f"/v1/volumes/{volume['id']}", token=other_token)).status == 404
    assert (await api.call("GET", f"/v1/images/{mine['id']}", token=other_token)).status == 404
    listed = await api.call("GET", "/v1/images", token=other_token)
    assert [i["id"] for i in listed.body["items"]] == [theirs["id"]]

    # Public images: administrators only; every tenant then sees and clones them.
    forbidden = await api.call(
        "POST",
        "/v1/images?name=pub&visibility=public",
        token=token,
        data=IMAGE,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert forbidden.status == 403, forbidden.body
    public = await upload(cloud, api.config.admin_token, IMAGE, visibility="public", name="pub")
    assert public["tenant_id"] is None
    cloned = await create_volume(cloud, other_token, image=public["id"], name="from-public")
    assert cloned["parent"] == f"image:{public['id']}"
    refused_delete = await api.call("DELETE", f"/v1/images/{public['id']}", token=token)
    assert refused_delete.status == 403, refused_delete.body


async def test_volume_creation_is_idempotent_and_listed_by_pages(cloud: Cloud) -> None:
    api = cloud.gateway
    _, token = await api.tenant()
    body = {"name": "d1", "size_gb": 1}
    headers = {"Idempotency-Key": "create-d1"}
    first = await api.call("POST", "/v1/volumes", token=token, json=body, headers=headers)
    second = await api.call("POST", "/v1/volumes", token=token, json=body, headers=headers)
    assert (first.status, second.status) == (202, 202)
    assert first.body["id"] == second.body["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    for name in ("d2", "d3"):
        await api.call("POST", "/v1/volumes", token=token, json={"name": name, "size_gb": 1})
    requests = await read_events(cloud.bootstrap, event_topic("gateway", cloud.namespace), REGISTRY)
    assert len([e for e in requests if e.type == "VolumeRequested"]) == 3

    page = await api.call("GET", "/v1/volumes?limit=2", token=token)
    assert [v["name"] for v in page.body["items"]] == ["d1", "d2"]
    rest = await api.call("GET", f"/v1/volumes?limit=2&cursor={page.body['next']}", token=token)
    assert ([v["name"] for v in rest.body["items"]], rest.body["next"]) == (["d3"], None)
    bad = await api.call("GET", "/v1/volumes?cursor=nonsense", token=token)
    assert (bad.status, bad.problem_fields) == (400, ["cursor"])
    for volume in [*page.body["items"], *rest.body["items"]]:
        await cloud.wait_volume(token, volume["id"], "available")
        gone = await api.call("DELETE", f"/v1/volumes/{volume['id']}", token=token)
        assert gone.status == 202, gone.body
    for volume in [*page.body["items"], *rest.body["items"]]:
        await wait_gone(cloud, token, f"/v1/volumes/{volume['id']}")
    assert (await cloud.audit()).clean
