"""Hostile image uploads against the real stack (gateway, storage service, Ceph): a qcow2 that
names a host file as its data file or backing file, one declaring 20 TiB, fuzzed headers, and
more imports at once than the host takes. Each is a clear 4xx (503 for the busy host), and the
pool holds nothing the log does not account for."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.storage.gateway_storage import Cloud, running_cloud, upload
from tests.support.qcow2 import qemu_img_create

from virga_devstack.ceph import CephCluster

pytestmark = pytest.mark.kafka

OCTETS = {"Content-Type": "application/octet-stream"}
SECRET = b"[client.admin]\n\tkey = the cluster's keyring, which must never leave this host\n"
FUZZ_EXAMPLES = int(os.environ.get("VIRGA_TEST_FUZZ_EXAMPLES", "12"))
"""Fuzzed headers sent through the whole stack; more via the environment."""


@pytest.fixture
async def cloud(kafka_bootstrap: str, ceph_cluster: CephCluster) -> AsyncIterator[Cloud]:
    async with running_cloud(
        kafka_bootstrap,
        ceph_cluster,
        gateway_max_bytes=8 << 20,
        image_max_bytes=4 << 20,
        max_imports=1,
        import_wait_seconds=0.5,
    ) as running:
        yield running


async def refused(cloud: Cloud, token: str, body: bytes, status: int, reason: str) -> None:
    """Upload `body` as qcow2, expect `status` with `reason` in the detail; nothing is left:
    no image in the tenant's list (a refused upload leaves none behind), none in the pool."""
    before = set(await cloud.ceph.list())
    reply = await cloud.gateway.call(
        "POST", "/v1/images?name=hostile&disk_format=qcow2", token=token, data=body,
        headers=OCTETS,
    )  # fmt: skip
    assert reply.status == status, reply.body
    assert reason in reply.body["detail"], reply.body
    listed = await cloud.gateway.call("GET", "/v1/images", token=token)
    assert [i for i in listed.body["items"] if i["name"] == "hostile"] == []
    assert set(await cloud.ceph.list()) <= before
    assert (await cloud.audit()).clean


async def test_an_image_whose_data_file_is_a_host_file_is_refused_and_copies_nothing(
    cloud: Cloud, tmp_path: Path
) -> None:
    _, token = await cloud.gateway.tenant()
    keyring = tmp_path / "ceph.client.admin.keyring"
    body = qemu_img_create(
        tmp_path / "exploit.qcow2", "64K", "-o", f"data_file={keyring},data_file_raw=on"
    )
    keyring.write_bytes(SECRET)  # after: `qemu-img create` truncates the file it names
    await refused(cloud, token, body, 422, "external data file")


async def test_an_image_with_a_backing_file_is_refused(cloud: Cloud, tmp_path: Path) -> None:
    _, token = await cloud.gateway.tenant()
    base = tmp_path / "base.raw"
    base.write_bytes(SECRET + bytes(65536 - len(SECRET)))
    body = qemu_img_create(tmp_path / "child.qcow2", "64K", "-b", str(base), "-F", "raw")
    await refused(cloud, token, body, 422, "backing file")


async def test_a_virtual_size_bomb_is_refused_before_conversion(
    cloud: Cloud, tmp_path: Path
) -> None:
    _, token = await cloud.gateway.tenant()
    body = qemu_img_create(tmp_path / "bomb.qcow2", "20T")
    assert len(body) < 1 << 20  # a small file declaring 20 TiB
    await refused(cloud, token, body, 413, f"virtual size {20 << 40}")


async def test_fuzzed_qcow2_headers_are_refused_or_imported_whole(
    cloud: Cloud, tmp_path: Path
) -> None:
    _, token = await cloud.gateway.tenant()
    plain = qemu_img_create(tmp_path / "plain.qcow2", "1M")
    seen: list[int] = []

    async def send(body: bytes) -> None:
        reply = await cloud.gateway.call(
            "POST", "/v1/images?name=fuzz&disk_format=qcow2", token=token, data=body,
            headers=OCTETS,
        )  # fmt: skip
        assert reply.status in (201, 413, 422), (reply.body, body[:128].hex())
        seen.append(reply.status)
        if reply.status == 201:  # harmless after all: it must be whole, and it goes again
            assert reply.body["size_bytes"] <= 4 << 20
            gone = await cloud.gateway.call("DELETE", f"/v1/images/{reply.body['id']}", token=token)
            assert gone.status == 202, gone.body

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(
        edits=st.lists(
            st.tuples(st.integers(0, 127), st.binary(min_size=1, max_size=8)),
            min_size=1,
            max_size=4,
        )
    )
    def fuzz(edits: list[tuple[int, bytes]]) -> None:
        body = bytearray(plain)
        for offset, value in edits:
            body[offset : offset + len(value)] = value
        bodies.append(bytes(body))

    # The headers are drawn first, on this thread with the loop held: hypothesis refuses
    # (HypothesisDeprecationWarning) a draw during which the `random` module's state moves,
    # as the stack's clients on the loop would move it from a thread beside it.
    bodies: list[bytes] = []
    fuzz()
    for body in bodies:
        await send(body)
    assert len(seen) >= FUZZ_EXAMPLES // 2
    await asyncio.sleep(0.5)  # the deletions of what was imported reach the pool
    for _ in range(100):
        if (await cloud.audit()).clean:
            break
        await asyncio.sleep(0.1)
    assert (await cloud.audit()).clean


async def test_imports_beyond_the_hosts_slots_are_refused_while_one_runs(cloud: Cloud) -> None:
    _, token = await cloud.gateway.tenant()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield bytes(1 << 16)
        await release.wait()
        yield bytes(1 << 16)

    api = cloud.gateway
    assert api.client is not None
    first = asyncio.create_task(
        api.client.post(
            "/v1/images?name=slow&disk_format=raw",
            data=slow_body(),
            headers={**OCTETS, "Authorization": f"Bearer {token}"},
        )
    )
    await asyncio.sleep(0.5)  # the first upload holds the host's only import slot
    busy = await api.call(
        "POST", "/v1/images?name=busy&disk_format=raw", token=token, data=bytes(1 << 16),
        headers=OCTETS,
    )  # fmt: skip
    assert busy.status == 503, busy.body
    assert "too many images are being imported at once" in busy.body["detail"]
    release.set()
    async with await first as reply:
        assert reply.status == 201, await reply.text()
    await upload(cloud, token, bytes(1 << 16), name="after", disk_format="raw")
    assert (await cloud.audit()).clean
