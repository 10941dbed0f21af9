"""Audit of a Ceph pool against the log: every RBD image and snapshot the storage service
made must be accounted for by its events, and every one its events say exists must be there.

Names derive from ids (see `virga_events.catalog.storage` and `virga_storage.effects.intents`):
volume `<id>` is `volume-<id>` with its snapshots `snapshot-<snapshot id>`, image `<id>` is
`image-<id>` with its `base` snapshot.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import virga_events.catalog  # noqa: F401  (registers every event type)
from tests.support.kafka import read_events
from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_events.catalog.storage import rbd_image_name, rbd_volume_name
from virga_storage.drivers.base import BASE_SNAPSHOT, ImageNotFound, StorageDriver
from virga_storage.effects.intents import snapshot_name


@dataclass(frozen=True, slots=True)
class PoolAudit:
    """What the pool holds that the log does not account for, and the reverse."""

    unaccounted: list[str]
    """RBD images (``name``) and snapshots (``name@snap``) no event accounts for."""
    missing: list[str]
    """Images and snapshots the log says exist but the pool lacks."""

    @property
    def clean(self) -> bool:
        return not self.unaccounted and not self.missing


def expected_names(storage_events: Iterable[Envelope]) -> set[str]:
    """Images and ``image@snapshot`` names the storage service's events say exist now."""
    alive: dict[str, set[str]] = {}
    for envelope in storage_events:
        kind, aggregate = envelope.type, envelope.aggregate_id
        if kind == "VolumeCreated":
            alive.setdefault(rbd_volume_name(aggregate), set())
        elif kind == "VolumeSnapshotCreated":
            snapshot = snapshot_name(envelope.payload.snapshot_id)
            alive.setdefault(rbd_volume_name(aggregate), set()).add(snapshot)
        elif kind == "VolumeSnapshotDeleted":
            snapshot = snapshot_name(envelope.payload.snapshot_id)
            alive.get(rbd_volume_name(aggregate), set()).discard(snapshot)
        elif kind == "VolumeDeleted":
            alive.pop(rbd_volume_name(aggregate), None)
        elif kind == "ImageImported":
            alive[rbd_image_name(aggregate)] = {BASE_SNAPSHOT}
        elif kind == "ImageDeleted":
            alive.pop(rbd_image_name(aggregate), None)
    return set(alive) | {f"{name}@{snap}" for name, snaps in alive.items() for snap in snaps}


async def pool_names(driver: StorageDriver) -> set[str]:
    """Every image of the driver's pool and every ``image@snapshot``."""
    found: set[str] = set()
    for name in await driver.list():
        try:
            info = await driver.info(name)
        except ImageNotFound:
            continue  # removed while listing
        found.add(name)
        found |= {f"{name}@{snap.name}" for snap in info.snapshots}
    return found


async def audit_pool(
    driver: StorageDriver,
    storage_events: Iterable[Envelope],
    *,
    ids: Collection[str] = (),
    shared: bool = False,
) -> PoolAudit:
    """Compare the pool with the events of one `<ns>.storage` topic.

    A pool used by this log alone (`shared=False`) is judged whole. In a pool shared with
    other namespaces (other tests running at once), only names derived from the ids of this
    log (its aggregates, and `ids`: e.g. every aggregate of `<ns>.api`, so that an orphan of
    a request without outcome counts) are judged.
    """
    events = list(storage_events)
    expected = expected_names(events)
    ours = {e.aggregate_id for e in events} | set(ids)
    present = await pool_names(driver)

    def judged(name: str) -> bool:
        image = name.partition("@")[0]
        return not shared or image.removeprefix("volume-").removeprefix("image-") in ours

    unaccounted = sorted(n for n in present - expected if judged(n))
    missing = sorted(expected - present)
    return PoolAudit(unaccounted, missing)


async def audit_namespace(
    bootstrap: str, namespace: str, driver: StorageDriver, *, shared: bool = False
) -> PoolAudit:
    """`audit_pool` over `<namespace>.storage` read to its end; with `shared`, names of every
    aggregate of `<namespace>.api` are judged too."""
    storage = await read_events(bootstrap, event_topic("storage", namespace), REGISTRY)
    requests = await read_events(bootstrap, event_topic("gateway", namespace), REGISTRY)
    ids = {e.aggregate_id for e in requests}
    return await audit_pool(driver, storage, ids=ids, shared=shared)
