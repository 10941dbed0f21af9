"""Image uploads on the real cluster: qcow2 conversion, refusals, and a storage service
killed (SIGKILL) while it writes the pool, which leaves neither orphan nor duplicate."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.integration.gateway.harness import Gateway, wait_until
from tests.integration.storage.gateway_storage import (
    IMAGE,
    Cloud,
    running_cloud,
    upload,
    wait_gone,
)
from tests.support.kafka import read_events
from tests.support.pool import audit_namespace
from tests.support.ports import free_port

from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import STORAGE_USER, client_keyring
from virga_devstack.processes import ServiceProcess
from virga_eventlog import KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import REGISTRY
from virga_events.catalog.storage import (
    UPLOAD_KEY_HEADER,
    ImageImportRequested,
    rbd_image_name,
    upload_key_digest,
)
from virga_storage.drivers.rbd import RbdDriver

pytestmark = pytest.mark.kafka

OCTETS = {"Content-Type": "application/octet-stream"}


@pytest.fixture
async def cloud(kafka_bootstrap: str, ceph_cluster: CephCluster) -> AsyncIterator[Cloud]:
    async with running_cloud(
        kafka_bootstrap, ceph_cluster, gateway_max_bytes=8 << 20, image_max_bytes=4 << 20
    ) as running:
        yield running


def qcow2_of(raw: bytes, directory: Path) -> bytes:
    source, target = directory / "disk.raw", directory / "disk.qcow2"
    source.write_bytes(raw)
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(source), str(target)],
        check=True,
    )
    return target.read_bytes()


async def test_a_qcow2_upload_is_stored_as_raw(cloud: Cloud, tmp_path: Path) -> None:
    _, token = await cloud.gateway.tenant()
    # Data, then a hole: the raw image is 3 MiB, the qcow2 much smaller.
    raw = IMAGE[: 1 << 20] + bytes(2 << 20)
    qcow2 = qcow2_of(raw, tmp_path)
    assert len(qcow2) < len(raw)
    image = await upload(cloud, token, qcow2, disk_format="qcow2")
    assert (image["disk_format"], image["size_bytes"]) == ("qcow2", len(raw))
    assert image["sha256"] == hashlib.sha256(qcow2).hexdigest()
    assert await cloud.ceph.read(rbd_image_name(image["id"]), 0, len(raw)) == raw
    await cloud.gateway.call("DELETE", f"/v1/images/{image['id']}", token=token)
    await wait_gone(cloud, token, f"/v1/images/{image['id']}")


async def test_uploads_that_cannot_be_images_fail_and_leave_nothing(cloud: Cloud) -> None:
    api = cloud.gateway
    _, token = await api.tenant()

    # Not a qcow2 at all.
    bad = await api.call(
        "POST", "/v1/images?name=bad&disk_format=qcow2", token=token, data=IMAGE, headers=OCTETS
    )
    assert bad.status == 422, bad.body
    assert bad.problem_fields == ["body"]
    assert "/" not in bad.body["detail"], bad.body  # the storage service's paths stay its own
    # Above the gateway's limit, by its Content-Length: refused before anything is recorded.
    huge = await api.call("POST", "/v1/images?name=huge", token=token, data=bytes(9 << 20))
    assert (huge.status, huge.problem_fields) == (413, ["body"])
    # Above the storage service's limit, sent without a length: the service stops reading.

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(6):
            yield bytes(1 << 20)

    assert api.client is not None
    async with api.client.post(
        "/v1/images?name=chunked",
        data=chunks(),
        headers={**OCTETS, "Authorization": f"Bearer {token}"},
    ) as reply:
        assert reply.status == 413, await reply.text()
    bad_query = await api.call("POST", "/v1/images?disk_format=vmdk", token=token, data=IMAGE)
    # A bad query parameter is a 400 naming it, as on every route; so is a missing name.
    assert bad_query.status == 400
    assert {e["field"] for e in bad_query.body["errors"]} <= {"name", "disk_format"}
    nameless = await api.call("POST", "/v1/images", token=token, data=IMAGE, headers=OCTETS)
    assert (nameless.status, nameless.problem_fields) == (400, ["name"])

    # A refused upload was answered with its reason and leaves no image to delete (an import
    # cut off by the storage service going away shows `error` instead: its client got a 503).
    listed = await api.call("GET", "/v1/images", token=token)
    assert listed.body["items"] == []
    assert api.runner is not None
    refused = [i for i in api.runner.state.images.values() if i.name in ("bad", "chunked")]
    assert sorted(i.status for i in refused) == ["deleted", "deleted"]
    for image in refused:
        shown = await api.call("GET", f"/v1/images/{image.id}", token=token)
        assert shown.status == 404
        assert rbd_image_name(image.id) not in await cloud.ceph.list()
    assert (await cloud.audit()).clean


async def test_a_storage_service_killed_while_writing_an_image_leaves_no_orphan(
    kafka_bootstrap: str, ceph_cluster: CephCluster, tmp_path: Path
) -> None:
    namespace = f"kill{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    port = free_port()
    storage = ServiceProcess(
        "storage",
        "virga_storage",
        {
            "VIRGA_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "VIRGA_NAMESPACE": namespace,
            "VIRGA_CEPH_CONF": str(ceph_cluster.conf_file),
            # As the storage service's own cephx user, as deployed (never client.admin).
            "VIRGA_CEPH_USER": STORAGE_USER,
            "VIRGA_CEPH_KEYRING": str(client_keyring(ceph_cluster, STORAGE_USER)),
            "VIRGA_CEPH_POOL": ceph_cluster.pool,
            "VIRGA_HTTP_PORT": str(port),
            "VIRGA_IMAGE_SPOOL_DIR": str(tmp_path),
        },
        tmp_path,
        health_url=f"http://127.0.0.1:{port}/healthz",
    )
    ceph = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, ceph_cluster.pool)
    await ceph.connect()
    storage.start()
    gateway: Gateway | None = None
    try:
        await asyncio.to_thread(storage.wait_healthy, 60)
        gateway = await Gateway.create(
            kafka_bootstrap, namespace=namespace, storage_url=f"http://127.0.0.1:{port}"
        )
        _, token = await gateway.tenant()
        data = os.urandom(1 << 20) * 192  # 192 MiB of data: writing the pool takes a while
        sent = asyncio.create_task(
            gateway.call("POST", "/v1/images?name=big", token=token, data=data, headers=OCTETS)
        )
        await wait_until(lambda: bool(gateway and gateway.runner and gateway.runner.state.images))
        assert gateway.runner is not None
        [image_id] = gateway.runner.state.images
        name = rbd_image_name(image_id)

        for _ in range(6000):  # polled: the pool tells no one when an image appears
            if name in await ceph.list():
                break
            await asyncio.sleep(0.01)
        storage.kill()  # between the rbd calls and the event
        answer = await sent
        assert answer.status == 503, answer.body
        assert name in await ceph.list()  # the partial image, for now

        storage.start()
        await asyncio.to_thread(storage.wait_healthy, 60)
        projection = gateway.runner
        await wait_until(lambda: projection.state.images[image_id].status == "error", 30)
        shown = await gateway.call("GET", f"/v1/images/{image_id}", token=token)
        assert shown.body["status"] == "error"
        assert "interrupted" in shown.body["fault"]
        assert name not in await ceph.list()
        outcomes = [
            e.type
            for e in await read_events(kafka_bootstrap, event_topic("storage", namespace), REGISTRY)
            if e.aggregate_id == image_id
        ]
        assert outcomes == ["ImageImportFailed"]
        audit = await audit_namespace(kafka_bootstrap, namespace, ceph, shared=True)
        assert audit.clean, audit
    finally:
        if gateway is not None:
            await gateway.close()
        storage.stop()
        await ceph.close()


async def test_a_retried_upload_with_its_idempotency_key_imports_once(cloud: Cloud) -> None:
    api = cloud.gateway
    _, token = await api.tenant()
    headers = {**OCTETS, "Idempotency-Key": "upload-debian"}
    first = await api.call(
        "POST", "/v1/images?name=debian", token=token, data=IMAGE, headers=headers
    )
    assert first.status == 201, first.body
    again = await api.call(
        "POST", "/v1/images?name=debian", token=token, data=IMAGE, headers=headers
    )
    assert (again.status, again.headers["Idempotent-Replayed"]) == (202, "true")
    assert again.body["id"] == first.body["id"]
    other = await api.call(
        "POST", "/v1/images?name=ubuntu", token=token, data=IMAGE, headers=headers
    )
    assert (other.status, other.problem_fields) == (422, ["Idempotency-Key"])
    requests = await read_events(cloud.bootstrap, event_topic("gateway", cloud.namespace), REGISTRY)
    assert [e.aggregate_id for e in requests if e.type == "ImageImportRequested"] == [
        first.body["id"]
    ]
    await api.call("DELETE", f"/v1/images/{first.body['id']}", token=token)
    await wait_gone(cloud, token, f"/v1/images/{first.body['id']}")


async def test_the_upload_endpoint_takes_bytes_only_with_the_requests_key(cloud: Cloud) -> None:
    """A process that can reach the storage service's port and read the log (where only the
    key's digest is) cannot fill a pending image: the stream must carry the request's key."""
    assert cloud.storage is not None
    tenant, _ = await cloud.gateway.tenant()
    keyed, legacy = str(uuid.uuid4()), str(uuid.uuid4())
    asked = ImageImportRequested(
        name="keyed",
        disk_format="raw",
        visibility="private",
        upload_key_sha256=upload_key_digest("k"),
    )
    await cloud.feed("gateway", keyed, asked, tenant)
    old = ImageImportRequested(name="legacy", disk_format="raw", visibility="private")
    await cloud.feed("gateway", legacy, old, tenant)
    storage = cloud.storage
    await wait_until(lambda: {keyed, legacy} <= storage.state.images.keys())
    base = f"http://127.0.0.1:{storage.http_port}/internal/images"

    async with aiohttp.ClientSession() as http:

        async def put(image_id: str, key: str | None) -> int:
            headers = dict(OCTETS) if key is None else {**OCTETS, UPLOAD_KEY_HEADER: key}
            body = io.BytesIO(IMAGE)
            async with http.put(f"{base}/{image_id}", data=body, headers=headers) as answer:
                return answer.status

        assert await put(keyed, None) == 403
        assert await put(keyed, "not-k") == 403
        assert await put(legacy, "k") == 403  # recorded without a key: takes no upload
        assert storage.state.images[keyed].status == "importing"  # still waits for its bytes
        assert rbd_image_name(keyed) not in await cloud.ceph.list()
        assert await put(keyed, "k") == 200
    await wait_until(lambda: storage.state.images[keyed].status == "available")
    assert await cloud.ceph.read(rbd_image_name(keyed), 0, len(IMAGE)) == IMAGE
    await cloud.ceph.remove(rbd_image_name(keyed))  # fed past the gateway: it knows no such image


async def test_a_tenants_public_upload_is_refused_before_its_body_is_sent(cloud: Cloud) -> None:
    """The 403 comes while the client still holds every byte of its (announced) 1 GiB body."""
    api = cloud.gateway
    _, token = await api.tenant()
    assert api.client is not None
    url = api.client.make_url("/v1/images")
    reader, writer = await asyncio.open_connection(url.host, url.port)
    try:
        writer.write(
            (
                "POST /v1/images?name=mine&visibility=public HTTP/1.1\r\n"
                f"Host: {url.host}\r\nAuthorization: Bearer {token}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {1 << 30}\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
    assert status_line.split()[1] == b"403", status_line
    assert api.runner is not None
    assert not [i for i in api.runner.state.images.values() if i.name == "mine"]
