"""The storage service as a running service: real Kafka and the real Ceph cluster, driven
only through the events a gateway, a scheduler and compute agents would write."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaProducer
from tests.support.kafka import following

import virga_events.catalog.storage  # noqa: F401  (registers the storage event types)
from virga_devstack.ceph import CephCluster
from virga_eventlog import KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, encode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import (
    VolumeDeletionRequested,
    VolumeExtendRequested,
    VolumeRequested,
    VolumeSnapshotRequested,
    rbd_image_name,
    rbd_volume_name,
)
from virga_runtime import ServiceRunner
from virga_storage.config import StorageConfig
from virga_storage.core.model import StorageState
from virga_storage.drivers.base import BASE_SNAPSHOT
from virga_storage.drivers.rbd import RbdDriver
from virga_storage.effects.intents import snapshot_name
from virga_storage.effects.volumes import GiB
from virga_storage.service import definition, runner_config

pytestmark = pytest.mark.kafka

IMAGE_BYTES = b"virga boot image " * 4096


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def uid(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@dataclass
class Cloud:
    """One namespace on the test broker: writes inputs, follows `<ns>.storage`."""

    settings: KafkaSettings
    producer: AIOKafkaProducer
    storage: list[Envelope] = field(default_factory=list)

    async def write(self, service: str, event: Event, aggregate_id: str) -> Envelope:
        envelope = new_event(event, aggregate_id=aggregate_id, tenant_id="t-1", producer=service)
        topic = event_topic(service, self.settings.namespace)
        await self.producer.send_and_wait(topic, encode(envelope), key=aggregate_id.encode())
        return envelope

    def events(self, type_: str, aggregate_id: str) -> list[Envelope]:
        return [e for e in self.storage if e.type == type_ and e.aggregate_id == aggregate_id]

    def types(self, aggregate_id: str) -> list[str]:
        return [e.type for e in self.storage if e.aggregate_id == aggregate_id]

    async def wait_for(self, type_: str, aggregate_id: str, count: int = 1) -> None:
        await wait_until(lambda: len(self.events(type_, aggregate_id)) >= count)


async def wait_until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    namespace = uid("storage-")
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        topic = event_topic("storage", namespace)
        async with following(settings, topic, client_id=namespace) as events:
            yield Cloud(settings, producer, storage=events)
    finally:
        await producer.stop()


@pytest.fixture
async def ceph(ceph_cluster: CephCluster) -> AsyncIterator[RbdDriver]:
    """The test's own view of the pool; images the test made are removed at its end."""
    driver = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, ceph_cluster.pool)
    await driver.connect()
    before = set(await driver.list())
    try:
        yield driver
    finally:
        made = [name for name in await driver.list() if name not in before]
        for name in sorted(made, key=lambda n: n.startswith("image-")):  # clones first
            await driver.flatten(name)
        for name in sorted(made, key=lambda n: n.startswith("image-")):
            await driver.remove(name)
        await driver.close()


class CrashingDriver(RbdDriver):
    """Does the real work of `create_volume`, then dies before the outcome is written."""

    crashes = 1

    async def create_volume(self, name: str, size_bytes: int) -> None:
        await super().create_volume(name, size_bytes)
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("the storage process died right after the rbd call")


@dataclass
class Service:
    runner: ServiceRunner[StorageState]
    task: asyncio.Task[None]
    driver: RbdDriver

    async def stop(self, *, snapshot: bool = True) -> None:
        self.runner.request_stop()
        try:
            with contextlib.suppress(RuntimeError):
                await self.task
        finally:
            await self.runner.close(snapshot=snapshot)
            await self.driver.close()


async def start_service(
    cloud: Cloud,
    cluster: CephCluster,
    driver_type: type[RbdDriver] = RbdDriver,
    max_clone_depth: int = 5,
) -> Service:
    config = StorageConfig(
        ceph_conf=str(cluster.conf_file),
        ceph_keyring=str(cluster.keyring),
        ceph_pool=cluster.pool,
        max_clone_depth=max_clone_depth,
        namespace=cloud.settings.namespace,
    )
    driver = driver_type(cluster.conf_file, cluster.keyring, cluster.pool)
    await driver.connect()
    runner = ServiceRunner(definition(config, driver), cloud.settings, runner_config(config))
    await runner.start()
    return Service(runner, asyncio.create_task(runner.serve()), driver)


@contextlib.asynccontextmanager
async def running(
    cloud: Cloud, cluster: CephCluster, max_clone_depth: int = 5
) -> AsyncIterator[Service]:
    service = await start_service(cloud, cluster, max_clone_depth=max_clone_depth)
    try:
        yield service
    finally:
        await service.stop()


async def test_a_volume_is_created_extended_and_deleted(
    cloud: Cloud, ceph_cluster: CephCluster, ceph: RbdDriver
) -> None:
    volume = uid("v-")
    async with running(cloud, ceph_cluster):
        asked = await cloud.write("gateway", VolumeRequested(name="data", size_gb=1), volume)
        await cloud.wait_for("VolumeCreated", volume)
        [created] = cloud.events("VolumeCreated", volume)
        assert created.causation_id == asked.event_id
        assert (created.payload.size_gb, created.payload.parent) == (1, None)
        assert (await ceph.info(rbd_volume_name(volume))).size_bytes == GiB

        await cloud.write("gateway", VolumeExtendRequested(size_gb=3), volume)
        await cloud.wait_for("VolumeExtended", volume)
        assert (await ceph.info(rbd_volume_name(volume))).size_bytes == 3 * GiB
        await cloud.write("gateway", VolumeExtendRequested(size_gb=2), volume)
        await cloud.wait_for("VolumeFailed", volume)
        [failed] = cloud.events("VolumeFailed", volume)
        assert "only grows" in failed.payload.reason
        assert (await ceph.info(rbd_volume_name(volume))).size_bytes == 3 * GiB

        await cloud.write("gateway", VolumeDeletionRequested(), volume)
        await cloud.wait_for("VolumeDeleted", volume)
        assert rbd_volume_name(volume) not in await ceph.list()
    assert cloud.types(volume) == [
        "VolumeCreated",
        "VolumeExtended",
        "VolumeFailed",
        "VolumeDeleted",
    ]


async def test_a_boot_volume_is_a_clone_of_the_image_and_goes_with_its_instance(
    cloud: Cloud, ceph_cluster: CephCluster, ceph: RbdDriver
) -> None:
    image, instance = uid("img-"), uid("i-")
    await ceph.import_image(rbd_image_name(image), one_chunk(IMAGE_BYTES), 64 << 20)
    flavor = Flavor(name="m1.tiny", vcpus=1, ram_mb=128, disk_gb=1)
    placed = InstanceScheduled(
        host="hv-1", rack="r", zone="z", attempt=1, name="web", flavor=flavor, image=image
    )
    async with running(cloud, ceph_cluster):
        await cloud.write("scheduler", placed, instance)
        await cloud.wait_for("VolumeCreated", instance)
        [created] = cloud.events("VolumeCreated", instance)
        assert created.payload.parent == f"image:{image}"
        assert (created.payload.instance_id, created.payload.clone_depth) == (instance, 1)
        name = rbd_volume_name(instance)
        assert await ceph.children(rbd_image_name(image), BASE_SNAPSHOT) == [name]
        assert (await ceph.info(name)).size_bytes == GiB
        assert await ceph.read(name, 0, len(IMAGE_BYTES)) == IMAGE_BYTES

        await cloud.write("compute", InstanceDeleted(host="hv-1"), instance)
        await cloud.wait_for("VolumeDeleted", instance)
        assert name not in await ceph.list()
        assert await ceph.children(rbd_image_name(image), BASE_SNAPSHOT) == []


async def test_a_crash_between_the_rbd_call_and_the_event_leaves_no_orphan_or_duplicate(
    cloud: Cloud, ceph_cluster: CephCluster, ceph: RbdDriver
) -> None:
    volume = uid("v-")
    service = await start_service(cloud, ceph_cluster, CrashingDriver)
    await cloud.write("gateway", VolumeRequested(name="data", size_gb=1), volume)
    await wait_until(lambda: service.task.done())  # died after creating the RBD image
    await service.stop(snapshot=False)
    assert rbd_volume_name(volume) in await ceph.list()
    assert cloud.events("VolumeCreated", volume) == []

    async with running(cloud, ceph_cluster):  # rebuilt from the log: re-decides the request
        await cloud.wait_for("VolumeCreated", volume)
        await cloud.write("gateway", VolumeDeletionRequested(), volume)
        await cloud.wait_for("VolumeDeleted", volume)
    assert cloud.types(volume) == ["VolumeCreated", "VolumeDeleted"]
    assert [n for n in await ceph.list() if volume in n] == []


async def clone_of_a_snapshot(cloud: Cloud, ceph: RbdDriver) -> tuple[str, str, str]:
    """An image, a volume cloned from it, a snapshot of that volume and a clone of the
    snapshot (depth 2); returns (parent volume, snapshot, child volume)."""
    image, parent, snapshot, child = uid("img-"), uid("v-"), uid("s-"), uid("v-")
    await ceph.import_image(rbd_image_name(image), one_chunk(IMAGE_BYTES), 64 << 20)
    await cloud.write("gateway", VolumeRequested(name="p", size_gb=1, image=image), parent)
    await cloud.wait_for("VolumeCreated", parent)
    taken = VolumeSnapshotRequested(snapshot_id=snapshot, name="nightly")
    await cloud.write("gateway", taken, parent)
    await cloud.wait_for("VolumeSnapshotCreated", parent)
    cloned = VolumeRequested(name="c", size_gb=1, snapshot=snapshot)
    await cloud.write("gateway", cloned, child)
    await cloud.wait_for("VolumeCreated", child)
    [created] = cloud.events("VolumeCreated", child)
    assert created.payload.parent == f"snapshot:{snapshot}"
    assert created.payload.clone_depth == 2
    assert await ceph.clone_depth(rbd_volume_name(child)) in (0, 2)  # flattening may be done
    return parent, snapshot, child


async def test_deleting_a_volume_flattens_its_clones_first(
    cloud: Cloud, ceph_cluster: CephCluster, ceph: RbdDriver
) -> None:
    async with running(cloud, ceph_cluster):
        parent, snapshot, child = await clone_of_a_snapshot(cloud, ceph)
        children = await ceph.children(rbd_volume_name(parent), snapshot_name(snapshot))
        assert children == [rbd_volume_name(child)]
        await cloud.write("gateway", VolumeDeletionRequested(), parent)
        await cloud.wait_for("VolumeDeleted", parent)
        assert cloud.types(child) == ["VolumeCreated", "VolumeFlattened"]
        [deleted] = cloud.events("VolumeDeleted", parent)
        [flattened] = cloud.events("VolumeFlattened", child)
        # The two events have different keys, hence partitions: the storage service's own
        # order is its hash chain's sequence, not the order a reader happens to see them in.
        assert flattened.producer == deleted.producer
        assert flattened.seq < deleted.seq
    names = await ceph.list()
    assert rbd_volume_name(parent) not in names
    assert (await ceph.info(rbd_volume_name(child))).parent is None
    assert await ceph.read(rbd_volume_name(child), 0, len(IMAGE_BYTES)) == IMAGE_BYTES


async def test_a_clone_deeper_than_the_maximum_is_flattened(
    cloud: Cloud, ceph_cluster: CephCluster, ceph: RbdDriver
) -> None:
    async with running(cloud, ceph_cluster, max_clone_depth=1):
        parent, _, child = await clone_of_a_snapshot(cloud, ceph)
        await cloud.wait_for("VolumeFlattened", child)
        assert cloud.types(parent) == ["VolumeCreated", "VolumeSnapshotCreated"]
    assert await ceph.clone_depth(rbd_volume_name(child)) == 0
    assert await ceph.read(rbd_volume_name(child), 0, len(IMAGE_BYTES)) == IMAGE_BYTES
