"""An evacuation's fence in the storage service: which images, and the effect's outcomes."""

from __future__ import annotations

from tests.unit.storage.test_storage_core import Storage, placement

from virga_events.catalog.scheduler import InstanceDisksFenceRequested
from virga_events.catalog.storage import (
    InstanceDisksFenced,
    InstanceDisksFenceFailed,
    VolumeCreated,
)
from virga_storage.drivers.base import StorageUnavailable
from virga_storage.drivers.memory import MemoryStorageDriver
from virga_storage.effects.fencing import FenceEffects
from virga_storage.effects.intents import FenceDisks


def test_the_fence_covers_the_instances_boot_volume() -> None:
    storage = Storage()
    storage.input(placement(), "i-1", "scheduler")
    storage.outcome(VolumeCreated(name="web-boot", size_gb=10), "i-1")
    asked = InstanceDisksFenceRequested(flow_id="f-1", step="fence", host="hv-1")
    [fence] = storage.input(asked, "i-1", "scheduler")
    assert fence == FenceDisks("i-1", "t-1", "f-1", "fence", ("volume-i-1",))
    [none] = storage.input(asked, "i-2", "scheduler")  # no disk of its own: nothing to break
    assert isinstance(none, FenceDisks)
    assert none.images == ()


async def test_the_effect_breaks_the_held_locks_and_says_which() -> None:
    driver = MemoryStorageDriver()
    await driver.create_volume("volume-i-1", 1 << 30)
    await driver.create_volume("volume-v-2", 1 << 30)
    driver.locked["volume-i-1"] = True
    effects = FenceEffects(driver)
    intent = FenceDisks("i-1", "t-1", "f-1", "fence", ("volume-i-1", "volume-v-2"))
    [emit] = await effects.fence(intent)
    assert emit.payload == InstanceDisksFenced(
        flow_id="f-1", step="fence", images=intent.images, broken=("volume-i-1",)
    )
    [again] = await effects.fence(intent)  # a repeated request: nothing left to break
    assert isinstance(again.payload, InstanceDisksFenced)
    assert again.payload.broken == ()
    driver.fail_next("fence", StorageUnavailable("down"))
    [failed] = await effects.fence(intent)
    assert isinstance(failed.payload, InstanceDisksFenceFailed)
    assert "down" in failed.payload.reason
