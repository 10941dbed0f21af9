"""A resize's `grow` step in the storage service: the boot volume grows, and the flow hears."""

from __future__ import annotations

from tests.unit.storage.test_storage_core import Storage, placement

from virga_events.catalog.scheduler import BootVolumeGrowRequested
from virga_events.catalog.storage import (
    BootVolumeGrowFailed,
    BootVolumeGrown,
    VolumeCreated,
    VolumeExtended,
    VolumeFailed,
    boot_volume_id,
    rbd_volume_name,
)
from virga_runtime.service import Emit
from virga_storage.drivers.memory import MemoryStorageDriver
from virga_storage.effects.intents import CreateVolume, ExtendVolume, ResizeOf
from virga_storage.effects.volumes import GiB, VolumeEffects


def grow(size_gb: int) -> BootVolumeGrowRequested:
    return BootVolumeGrowRequested(flow_id="r-1", step="grow", size_gb=size_gb)


def booted() -> Storage:
    storage = Storage()
    storage.input(placement(), "i-1", "scheduler")
    volume = boot_volume_id("i-1")
    storage.outcome(VolumeCreated(name="web-boot", size_gb=10, instance_id="i-1"), volume)
    return storage


def test_the_boot_volume_grows_to_the_new_flavors_disk_for_the_flow() -> None:
    storage = booted()
    [extend] = storage.input(grow(40), "i-1", "scheduler")
    assert extend == ExtendVolume(boot_volume_id("i-1"), "t-1", 40, ResizeOf("i-1", "r-1", "grow"))


def test_a_boot_volume_big_enough_already_is_answered_grown_at_once() -> None:
    storage = booted()
    [emit] = storage.input(grow(10), "i-1", "scheduler")
    assert isinstance(emit, Emit)
    assert emit.payload == BootVolumeGrown(flow_id="r-1", step="grow", size_gb=10)
    assert emit.aggregate_id == "i-1"


def test_an_instance_without_a_boot_volume_fails_the_step() -> None:
    [emit] = Storage().input(grow(40), "i-9", "scheduler")
    assert isinstance(emit, Emit)
    assert isinstance(emit.payload, BootVolumeGrowFailed)
    assert "no boot volume" in emit.payload.reason


async def test_the_grow_answers_the_flow_on_the_instance_beside_the_volumes_own_fact() -> None:
    driver = MemoryStorageDriver()
    effects = VolumeEffects(driver)
    volume = boot_volume_id("i-1")
    await effects.create(CreateVolume(volume, "t-1", "web-boot", 10))
    resize = ResizeOf("i-1", "r-1", "grow")
    extended, answered = await effects.extend(ExtendVolume(volume, "t-1", 40, resize))
    assert (extended.payload, extended.aggregate_id) == (VolumeExtended(size_gb=40), volume)
    assert answered.payload == BootVolumeGrown(flow_id="r-1", step="grow", size_gb=40)
    assert answered.aggregate_id == "i-1"
    assert (await driver.info(rbd_volume_name(volume))).size_bytes == 40 * GiB


async def test_a_failed_grow_fails_the_step_with_the_reason() -> None:
    driver = MemoryStorageDriver()
    effects = VolumeEffects(driver)
    volume = boot_volume_id("i-1")
    await effects.create(CreateVolume(volume, "t-1", "web-boot", 10))
    driver.set_pool_full(True)
    failed, answered = await effects.extend(
        ExtendVolume(volume, "t-1", 40, ResizeOf("i-1", "r-1", "grow"))
    )
    assert isinstance(failed.payload, VolumeFailed)
    assert isinstance(answered.payload, BootVolumeGrowFailed)
    assert answered.payload.reason == failed.payload.reason
