"""Images in the storage service's core and effects: requests, lost uploads, deletions
refused while clones exist, and the claim that keeps an upload and its abandonment apart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import orjson

from virga_events import Envelope, Event, new_event
from virga_events.catalog.storage import (
    ImageDeleted,
    ImageDeletionFailed,
    ImageDeletionRequested,
    ImageImported,
    ImageImportFailed,
    ImageImportRequested,
    VolumeCreated,
    VolumeFlattened,
    VolumeRequested,
    rbd_image_name,
)
from virga_runtime.service import Emit
from virga_storage.config import StorageConfig
from virga_storage.core.decide import decide, on_ready, tick
from virga_storage.core.fold import evolve
from virga_storage.core.model import StorageState
from virga_storage.core.snapshot import restore, snapshot
from virga_storage.drivers.memory import MemoryStorageDriver
from virga_storage.effects.images import ImageEffects, UploadClaims
from virga_storage.effects.intents import AbandonImport, DeleteImage

CONFIG = StorageConfig(ceph_conf="memory://", upload_timeout_seconds=600)
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def env(event: Event, aggregate: str, producer: str = "gateway", at: datetime = T0) -> Envelope:
    return new_event(
        event, aggregate_id=aggregate, tenant_id="t-1", producer=producer, occurred_at=at
    )


def fold(state: StorageState, *envelopes: Envelope) -> StorageState:
    for envelope in envelopes:
        state = evolve(state, envelope)
    return state


REQUEST = ImageImportRequested(name="debian", disk_format="qcow2", visibility="private")
IMPORTED = ImageImported(name="debian", size_bytes=1 << 20, sha256="ab", visibility="private")


def test_an_import_without_outcome_is_abandoned_when_ready_and_after_the_timeout() -> None:
    state = fold(StorageState(), env(REQUEST, "img-1"), env(REQUEST, "img-2"))
    state = fold(state, env(IMPORTED, "img-2", "storage"))
    [abandon] = on_ready(state)
    assert isinstance(abandon, AbandonImport)
    assert (abandon.image_id, abandon.tenant_id) == ("img-1", "t-1")
    assert "interrupted" in abandon.reason
    assert tick(CONFIG, state, T0 + timedelta(seconds=599)) == []
    [late] = tick(CONFIG, state, T0 + timedelta(seconds=601))
    assert isinstance(late, AbandonImport)
    assert "600 s" in late.reason
    state = fold(state, env(ImageImportFailed(reason="x", kind="interrupted"), "img-1", "storage"))
    assert on_ready(state) == []
    assert state.images["img-1"].status == "error"


def test_an_image_with_clones_is_not_deleted_and_the_refusal_names_them() -> None:
    state = fold(
        StorageState(),
        env(REQUEST, "img-1"),
        env(IMPORTED, "img-1", "storage"),
        env(VolumeRequested(name="a", size_gb=1, image="img-1"), "vol-a"),
        env(VolumeRequested(name="b", size_gb=1, image="img-1"), "vol-b"),
        env(
            VolumeCreated(name="a", size_gb=1, parent="image:img-1", clone_depth=1),
            "vol-a",
            "storage",
        ),
        env(
            VolumeCreated(name="b", size_gb=1, parent="image:img-1", clone_depth=1),
            "vol-b",
            "storage",
        ),
        env(VolumeFlattened(reason="deep"), "vol-b", "storage"),
    )
    asked = env(ImageDeletionRequested(), "img-1")
    state = evolve(state, asked)
    [refused] = decide(CONFIG, state, asked)
    assert isinstance(refused, Emit)
    assert isinstance(refused.payload, ImageDeletionFailed)
    assert refused.payload.dependents == ("vol-a",)  # vol-b no longer reads from it
    state = evolve(state, env(refused.payload, "img-1", "storage"))
    assert state.images["img-1"].deletion_event_id is None

    state = fold(state, env(VolumeFlattened(reason="parent deleted"), "vol-a", "storage"))
    again = env(ImageDeletionRequested(), "img-1")
    state = evolve(state, again)
    assert decide(CONFIG, state, again) == [DeleteImage("img-1", "t-1")]
    assert decide(CONFIG, state, env(ImageDeletionRequested(), "img-1")) == ()  # a duplicate
    state = evolve(state, env(ImageDeleted(), "img-1", "storage"))
    assert "img-1" not in state.images
    assert evolve(state, env(REQUEST, "img-1")).images == {}  # a late request: never back


def test_images_survive_a_snapshot_of_the_state() -> None:
    state = fold(StorageState(), env(REQUEST, "img-1"), env(REQUEST, "img-2"))
    state = fold(state, env(IMPORTED, "img-2", "storage"))
    restored = restore(orjson.loads(orjson.dumps(snapshot(state))))
    assert restored.images == state.images
    assert on_ready(restored) == on_ready(state)


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_an_abandonment_leaves_an_upload_in_progress_alone_and_wins_over_a_later_one() -> (
    None
):
    driver = MemoryStorageDriver()
    claims = UploadClaims()
    effects = ImageEffects(driver, claims)
    await driver.import_image(rbd_image_name("img-1"), one_chunk(b"partial"), 1 << 20)

    assert claims.claim("img-1", "upload")
    assert await effects.abandon(AbandonImport("img-1", "t-1", "lost")) == ()
    assert rbd_image_name("img-1") in await driver.list()  # the upload goes on
    claims.release("img-1")

    [failed] = await effects.abandon(AbandonImport("img-1", "t-1", "lost"))
    assert isinstance(failed.payload, ImageImportFailed)
    assert (failed.payload.kind, failed.payload.reason) == ("interrupted", "lost")
    assert rbd_image_name("img-1") not in await driver.list()
    assert not claims.claim("img-1", "upload")  # an upload arriving now is refused


async def test_deleting_an_image_the_pool_still_has_clones_of_fails_naming_them() -> None:
    driver = MemoryStorageDriver()
    effects = ImageEffects(driver, UploadClaims())
    await driver.import_image(rbd_image_name("img-1"), one_chunk(b"data"), 1 << 20)
    await driver.clone(rbd_image_name("img-1"), "base", "volume-v1", 1 << 30)
    [refused] = await effects.delete(DeleteImage("img-1", "t-1"))
    assert isinstance(refused.payload, ImageDeletionFailed)
    assert refused.payload.dependents == ("v1",)
    await driver.flatten("volume-v1")
    [deleted] = await effects.delete(DeleteImage("img-1", "t-1"))
    assert isinstance(deleted.payload, ImageDeleted)
    assert await driver.list() == ["volume-v1"]
