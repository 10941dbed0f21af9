"""The storage effect handlers over the in-memory driver: outcomes, failures, repeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from virga_events.catalog.storage import (
    VolumeCreated,
    VolumeDeleted,
    VolumeExtended,
    VolumeFailed,
    VolumeFlattened,
)
from virga_storage.drivers.base import BASE_SNAPSHOT, PoolFull, StorageUnavailable
from virga_storage.drivers.memory import MemoryStorageDriver
from virga_storage.effects.intents import (
    ChildVolume,
    CloneSource,
    CreateVolume,
    DeleteVolume,
    ExtendVolume,
    SnapshotVolume,
)
from virga_storage.effects.volumes import GiB, VolumeEffects
from virga_storage.upload import remove_leftover


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_create_twice_makes_one_image() -> None:
    driver = MemoryStorageDriver()
    effects = VolumeEffects(driver)
    create = CreateVolume("v-1", "t-1", "data", 2)
    for _ in range(2):
        [emit] = await effects.create(create)
        assert emit.payload == VolumeCreated(name="data", size_gb=2)
    assert await driver.list() == ["volume-v-1"]
    assert (await driver.info("volume-v-1")).size_bytes == 2 * GiB


async def test_a_full_pool_or_an_outage_is_a_volume_failure() -> None:
    driver = MemoryStorageDriver()
    effects = VolumeEffects(driver)
    driver.set_pool_full(True)
    [emit] = await effects.create(CreateVolume("v-1", "t-1", "data", 2))
    assert isinstance(emit.payload, VolumeFailed)
    assert "full" in emit.payload.reason
    driver.set_pool_full(False)
    driver.fail_next("resize", StorageUnavailable("Ceph did not answer"))
    await effects.create(CreateVolume("v-1", "t-1", "data", 2))
    [emit] = await effects.extend(ExtendVolume("v-1", "t-1", 4))
    assert emit.payload == VolumeFailed(operation="extend", reason="Ceph did not answer")
    [emit] = await effects.extend(ExtendVolume("v-1", "t-1", 4))
    assert emit.payload == VolumeExtended(size_gb=4)
    driver.fail_next("remove", PoolFull("no room for the journal"))
    [emit] = await effects.delete(DeleteVolume("v-1", "t-1"))
    assert isinstance(emit.payload, VolumeFailed)
    assert emit.payload.operation == "delete"
    assert await driver.list() == ["volume-v-1"]


async def test_deleting_a_parent_flattens_its_clones_first() -> None:
    driver = MemoryStorageDriver()
    effects = VolumeEffects(driver)
    await driver.import_image("image-img-1", one_chunk(b"boot"), GiB)
    await effects.create(CreateVolume("v-1", "t-1", "p", 1, CloneSource.of_image("img-1"), 1))
    await effects.snapshot(SnapshotVolume("v-1", "t-1", "s-1", "nightly"))
    source = CloneSource.of_snapshot("v-1", "s-1")
    await effects.create(CreateVolume("v-2", "t-1", "known", 1, source, 2))
    await effects.create(CreateVolume("v-3", "t-2", "unknown", 1, source, 2))
    emits = await effects.delete(DeleteVolume("v-1", "t-1", (ChildVolume("v-2", "t-1"),)))
    assert [(e.aggregate_id, type(e.payload)) for e in emits] == [
        ("v-2", VolumeFlattened),
        ("v-3", VolumeFlattened),
        ("v-1", VolumeDeleted),
    ]
    assert await driver.list() == ["image-img-1", "volume-v-2", "volume-v-3"]
    assert driver.read("volume-v-3", 0, 4) == b"boot"
    assert (await driver.info("volume-v-3")).parent is None
    assert await driver.children("image-img-1", BASE_SNAPSHOT) == []


async def test_a_partial_import_is_removed_once_the_cluster_is_back() -> None:
    driver = MemoryStorageDriver("rbd")
    await driver.create_volume("image-i", GiB)  # as an import cut off halfway leaves it
    driver.set_available(False)
    removing = asyncio.create_task(remove_leftover(driver, "image-i"))
    await asyncio.sleep(0.2)
    assert not removing.done()  # retried while the cluster is away
    driver.set_available(True)
    await asyncio.wait_for(removing, 10)
    assert await driver.list() == []
