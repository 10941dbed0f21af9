"""The storage service's pure core: evolve and decide, without Kafka or Ceph."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pytest

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import (
    VolumeCreated,
    VolumeDeleted,
    VolumeDeletionRequested,
    VolumeExtendRequested,
    VolumeFailed,
    VolumeFlattened,
    VolumeRequested,
    VolumeSnapshotCreated,
    VolumeSnapshotDeleted,
    VolumeSnapshotDeletionFailed,
    VolumeSnapshotDeletionRequested,
    VolumeSnapshotRequested,
)
from virga_runtime.service import Emit, Intent
from virga_storage.config import StorageConfig
from virga_storage.core.decide import decide
from virga_storage.core.fold import evolve
from virga_storage.core.model import StorageState
from virga_storage.core.snapshot import restore, snapshot
from virga_storage.effects.intents import (
    ChildVolume,
    CloneSource,
    CreateVolume,
    DeleteSnapshot,
    DeleteVolume,
    ExtendVolume,
    FlattenVolume,
    SnapshotVolume,
)

CONFIG = StorageConfig(ceph_conf="memory://", max_clone_depth=2)
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=512, disk_gb=10)


def env(event: Event, aggregate_id: str, producer: str = "gateway") -> Envelope:
    return new_event(event, aggregate_id=aggregate_id, tenant_id="t-1", producer=producer)


class Storage:
    """Folds events and decides on the inputs, as the runner does."""

    def __init__(self) -> None:
        self.state = StorageState()

    def input(self, event: Event, aggregate_id: str, producer: str = "gateway") -> Sequence[Intent]:
        envelope = env(event, aggregate_id, producer)
        self.state = evolve(self.state, envelope)
        return decide(CONFIG, self.state, envelope)

    def outcome(self, event: Event, aggregate_id: str) -> None:
        self.state = evolve(self.state, env(event, aggregate_id, "storage"))

    def created(self, volume_id: str, **request: object) -> None:
        [create, *_] = self.input(VolumeRequested(**request), volume_id)  # type: ignore[arg-type]
        assert isinstance(create, CreateVolume)
        self.outcome(VolumeCreated(name="v", size_gb=create.size_gb), volume_id)


def placement(image: str | None = "img-1", delete_on_termination: bool = True) -> Event:
    return InstanceScheduled(
        host="hv-1",
        rack="r",
        zone="z",
        attempt=1,
        name="web",
        flavor=SMALL,
        image=image,
        delete_on_termination=delete_on_termination,
    )


def test_a_requested_volume_is_created_once() -> None:
    storage = Storage()
    intents = storage.input(VolumeRequested(name="data", size_gb=5), "v-1")
    assert intents == [CreateVolume("v-1", "t-1", "data", 5)]
    assert storage.input(VolumeRequested(name="again", size_gb=9), "v-1") == ()
    assert storage.state.volumes["v-1"].name == "data"


def test_a_boot_volume_is_cloned_from_the_image_at_the_flavor_disk_size() -> None:
    storage = Storage()
    [create] = storage.input(placement(), "i-1", "scheduler")
    assert create == CreateVolume(
        "i-1", "t-1", "web-boot", 10, CloneSource.of_image("img-1"), 1, instance_id="i-1"
    )
    assert storage.input(placement(), "i-1", "scheduler") == ()  # a later attempt
    assert storage.input(placement(image=None), "i-2", "scheduler") == ()


def test_the_boot_volume_goes_with_its_instance_only_when_asked() -> None:
    storage = Storage()
    storage.input(placement(), "i-1", "scheduler")
    storage.outcome(VolumeCreated(name="web-boot", size_gb=10, instance_id="i-1"), "i-1")
    assert storage.input(InstanceDeleted(host="hv-1"), "i-1", "compute") == [
        DeleteVolume("i-1", "t-1")
    ]
    assert storage.input(InstanceDeleted(host="hv-1"), "i-1", "compute") == ()  # a duplicate

    storage.input(placement(delete_on_termination=False), "i-2", "scheduler")
    assert storage.input(InstanceDeleted(host="hv-1"), "i-2", "compute") == ()


def test_extend_only_grows() -> None:
    storage = Storage()
    storage.created("v-1", name="data", size_gb=5)
    assert storage.input(VolumeExtendRequested(size_gb=8), "v-1") == [ExtendVolume("v-1", "t-1", 8)]
    [shrink] = storage.input(VolumeExtendRequested(size_gb=2), "v-1")
    assert isinstance(shrink, Emit)
    assert isinstance(shrink.payload, VolumeFailed)
    assert shrink.payload.operation == "extend"
    assert "only grows" in shrink.payload.reason
    assert storage.input(VolumeExtendRequested(size_gb=5), "v-1") == ()


def test_clones_deeper_than_the_maximum_are_flattened_after_creation() -> None:
    storage = Storage()
    storage.created("v-0", name="base", size_gb=1, image="img-1")  # depth 1
    parent = "v-0"
    for n in range(1, 3):
        snap = f"s-{n}"
        [take] = storage.input(VolumeSnapshotRequested(snapshot_id=snap, name=snap), parent)
        assert take == SnapshotVolume(parent, "t-1", snap, snap)
        storage.outcome(VolumeSnapshotCreated(snapshot_id=snap, name=snap), parent)
        intents = storage.input(VolumeRequested(name="c", size_gb=1, snapshot=snap), f"v-{n}")
        create = intents[0]
        assert isinstance(create, CreateVolume)
        assert create.clone_depth == n + 1
        assert create.source == CloneSource.of_snapshot(parent, snap)
        storage.outcome(VolumeCreated(name="c", size_gb=1), f"v-{n}")
        parent = f"v-{n}"
    assert isinstance(intents[-1], FlattenVolume)
    assert len(intents) == 2
    storage.outcome(VolumeFlattened(reason="deep"), "v-2")
    assert storage.state.clone_depth(storage.state.volumes["v-2"]) == 0


def test_a_clone_of_an_unknown_snapshot_fails() -> None:
    [failed] = Storage().input(VolumeRequested(name="c", size_gb=1, snapshot="nope"), "v-1")
    assert isinstance(failed, Emit)
    assert isinstance(failed.payload, VolumeFailed)
    assert "nope" in failed.payload.reason


def test_deleting_a_parent_names_its_clones_to_flatten() -> None:
    storage = Storage()
    storage.created("v-1", name="p", size_gb=1)
    storage.outcome(VolumeSnapshotCreated(snapshot_id="s-1", name="s"), "v-1")
    storage.created("v-2", name="c", size_gb=1, snapshot="s-1")
    assert storage.input(VolumeDeletionRequested(), "v-1") == [
        DeleteVolume("v-1", "t-1", (ChildVolume("v-2", "t-1"),))
    ]
    storage.outcome(VolumeFlattened(reason="parent deleted"), "v-2")
    storage.outcome(VolumeDeleted(), "v-1")
    assert "s-1" not in storage.state.snapshots
    assert storage.state.clone_depth(storage.state.volumes["v-2"]) == 0
    assert storage.input(VolumeRequested(name="back", size_gb=1), "v-1") == ()


def test_a_failed_creation_leaves_the_volume_in_error() -> None:
    storage = Storage()
    storage.input(VolumeRequested(name="data", size_gb=5), "v-1")
    storage.outcome(VolumeFailed(operation="create", reason="pool full"), "v-1")
    assert storage.state.volumes["v-1"].status == "error"


def test_snapshot_round_trips_through_json() -> None:
    storage = Storage()
    storage.created("v-1", name="p", size_gb=1)
    storage.outcome(VolumeSnapshotCreated(snapshot_id="s-1", name="s"), "v-1")
    storage.input(placement(), "i-1", "scheduler")
    storage.outcome(VolumeDeleted(), "v-9")
    data = orjson.loads(orjson.dumps(snapshot(storage.state)))
    assert restore(data) == storage.state


def test_config_from_env() -> None:
    config = StorageConfig.from_env(
        {"VIRGA_CEPH_CONF": "memory://", "VIRGA_MAX_CLONE_DEPTH": "3", "VIRGA_NAMESPACE": "x"}
    )
    assert config.in_memory
    assert config.max_clone_depth == 3
    assert config.namespace == "x"
    assert StorageConfig.from_env({}).ceph_pool == "rbd"
    assert StorageConfig.from_env({}).ceph_op_timeout_seconds == 30
    assert StorageConfig.from_env({"VIRGA_CEPH_OP_TIMEOUT": "5"}).ceph_op_timeout_seconds == 5
    with pytest.raises(SystemExit, match="ceph_op_timeout_seconds"):
        StorageConfig.from_env({"VIRGA_CEPH_OP_TIMEOUT": "0"})


def test_requests_that_cannot_be_carried_out_fail_with_a_reason() -> None:
    storage = Storage()
    [both] = storage.input(VolumeRequested(name="c", size_gb=1, image="i", snapshot="s"), "v-1")
    assert isinstance(both, Emit)
    assert both.payload == VolumeFailed(
        operation="create", reason="give an image or a snapshot, not both"
    )
    storage.created("v-2", name="p", size_gb=1)
    storage.input(VolumeDeletionRequested(), "v-2")
    [late] = storage.input(VolumeSnapshotRequested(snapshot_id="s-1", name="s"), "v-2")
    assert isinstance(late, Emit)
    assert late.payload == VolumeFailed(operation="snapshot", reason="the volume is being deleted")
    [unknown] = storage.input(VolumeExtendRequested(size_gb=3), "v-9")
    assert isinstance(unknown, Emit)
    assert unknown.payload == VolumeFailed(operation="extend", reason="no such volume")


def test_a_snapshot_is_deleted_only_without_clones_and_once_per_request() -> None:
    storage = Storage()
    storage.created("v-1", name="p", size_gb=1)
    storage.outcome(VolumeSnapshotCreated(snapshot_id="s-1", name="s"), "v-1")
    storage.created("v-2", name="c", size_gb=1, snapshot="s-1")
    ask = VolumeSnapshotDeletionRequested(snapshot_id="s-1")
    [refused] = storage.input(ask, "v-1")
    assert isinstance(refused, Emit)
    assert refused.payload == VolumeSnapshotDeletionFailed(
        snapshot_id="s-1", reason="volumes are still clones of it: v-2", dependents=("v-2",)
    )
    storage.outcome(refused.payload, "v-1")
    storage.outcome(VolumeFlattened(reason="too deep"), "v-2")  # a flat volume reads nothing
    assert storage.input(ask, "v-1") == [DeleteSnapshot("v-1", "t-1", "s-1")]
    assert storage.input(ask, "v-1") == ()  # asked again while under way: nothing new
    storage.outcome(VolumeSnapshotDeleted(snapshot_id="s-1"), "v-1")
    assert "s-1" not in storage.state.snapshots
    assert storage.state.volumes["v-1"].snapshots == []
    assert storage.state.volumes["v-1"].snapshot_deletions == {}
    [failed] = storage.input(VolumeRequested(name="late", size_gb=1, snapshot="s-1"), "v-3")
    assert isinstance(failed, Emit)
    assert isinstance(failed.payload, VolumeFailed)


def test_a_snapshot_deletion_folded_before_the_snapshot_is_still_carried_out() -> None:
    """In a rebuild, the request (on the gateway's topic) may come before the snapshot (on the
    storage topic): the pending deletion is kept all the same."""
    storage = Storage()
    storage.created("v-1", name="p", size_gb=1)
    storage.input(VolumeSnapshotDeletionRequested(snapshot_id="s-1"), "v-1")
    storage.outcome(VolumeSnapshotCreated(snapshot_id="s-1", name="s"), "v-1")
    assert list(storage.state.volumes["v-1"].snapshot_deletions) == ["s-1"]
    data = orjson.loads(orjson.dumps(snapshot(storage.state)))
    assert restore(data) == storage.state
