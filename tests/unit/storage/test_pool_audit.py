"""The pool audit the tests use: what the pool holds against what the log says exists."""

from __future__ import annotations

from collections.abc import AsyncIterator

from tests.support.pool import audit_pool

from virga_events import Envelope, Event, new_event
from virga_events.catalog.storage import (
    ImageImported,
    VolumeCreated,
    VolumeDeleted,
    VolumeSnapshotCreated,
)
from virga_storage.drivers.memory import MemoryStorageDriver


def fact(event: Event, aggregate: str) -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t", producer="storage")


async def chunk() -> AsyncIterator[bytes]:
    yield b"data"


async def test_the_audit_names_orphans_and_missing_images_and_snapshots() -> None:
    driver = MemoryStorageDriver()
    await driver.import_image("image-img", chunk(), 1 << 20)
    await driver.clone("image-img", "base", "volume-v1", 1 << 20)
    await driver.snapshot("volume-v1", "snapshot-s1")
    await driver.create_volume("volume-orphan", 1 << 20)
    events = [
        fact(ImageImported(name="i", size_bytes=1 << 20, sha256="0", visibility="private"), "img"),
        fact(VolumeCreated(name="v", size_gb=1), "v1"),
        fact(VolumeSnapshotCreated(snapshot_id="s1", name="s"), "v1"),
        fact(VolumeSnapshotCreated(snapshot_id="s2", name="s"), "v1"),
        fact(VolumeCreated(name="gone", size_gb=1), "v2"),
        fact(VolumeDeleted(), "v2"),
    ]
    audit = await audit_pool(driver, events)
    assert audit.unaccounted == ["volume-orphan"]
    assert audit.missing == ["volume-v1@snapshot-s2"]
    assert not audit.clean
    # In a shared pool only the log's own ids (and those given) are judged.
    shared = await audit_pool(driver, events, shared=True)
    assert shared.unaccounted == []
    named = await audit_pool(driver, events, ids={"orphan"}, shared=True)
    assert named.unaccounted == ["volume-orphan"]
