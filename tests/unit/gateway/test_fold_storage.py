"""The gateway's projection of volumes and images: the same views whatever the order the
topics are read in (live, or a rebuild that reads the storage and compute topics first)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor, api
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachRequested,
    VolumeDetached,
    VolumeDetachRequested,
)
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.storage import (
    ImageImported,
    ImageImportRequested,
    VolumeCreated,
    VolumeDeletionRequested,
    VolumeExtended,
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
from virga_gateway.auth import Principal
from virga_gateway.images.views import image_view
from virga_gateway.problems import Problem
from virga_gateway.state import GatewayState, evolve, restore, snapshot
from virga_gateway.volumes.bodies import VolumeAction
from virga_gateway.volumes.commands import volume_action
from virga_gateway.volumes.model import volume_status
from virga_gateway.volumes.views import volume_view

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)


class Log:
    """Events in the order they happened, each tagged with its producer (its topic)."""

    def __init__(self) -> None:
        self.events: list[Envelope] = []

    def add(
        self, producer: str, event: Event, aggregate: str, cause: Envelope | None = None
    ) -> Envelope:
        at = T0 + timedelta(seconds=len(self.events))
        envelope = new_event(
            event, aggregate_id=aggregate, tenant_id="t-1", producer=producer,
            causation=cause, occurred_at=at,
        )  # fmt: skip
        self.events.append(envelope)
        return envelope

    def live(self) -> GatewayState:
        state = GatewayState()
        for envelope in self.events:
            state = evolve(state, envelope)
        return state

    def rebuilt(self) -> GatewayState:
        """Inputs (storage, compute) first, the gateway's own topic last."""
        state = GatewayState()
        for envelope in sorted(self.events, key=lambda e: e.producer == "gateway"):
            state = evolve(state, envelope)
        return state


def views(state: GatewayState) -> list[object]:
    shown = [
        msgspec.to_builtins(volume_view(v, state.instances))
        for v in state.volumes.values()
        if v.listed
    ]
    return sorted(shown, key=lambda v: v["id"]) + [
        msgspec.to_builtins(image_view(i)) for i in state.images.values() if i.requested
    ]


def test_volumes_show_the_same_whatever_the_order_of_the_topics() -> None:
    log = Log()
    log.add("gateway", api.InstanceRequested(name="web", flavor=TINY), "i-1")
    asked = log.add(
        "gateway", ImageImportRequested(name="deb", disk_format="raw", visibility="private"), "img"
    )
    log.add(
        "storage",
        ImageImported(name="deb", size_bytes=10, sha256="00", visibility="private"),
        "img",
        asked,
    )
    asked = log.add("gateway", VolumeRequested(name="data", size_gb=1, image="img"), "v-1")
    log.add(
        "storage",
        VolumeCreated(name="data", size_gb=1, parent="image:img", clone_depth=1),
        "v-1",
        asked,
    )
    snap = log.add("gateway", VolumeSnapshotRequested(snapshot_id="s-1", name="ok"), "v-1")
    log.add("storage", VolumeSnapshotCreated(snapshot_id="s-1", name="ok"), "v-1", snap)
    snap = log.add("gateway", VolumeSnapshotRequested(snapshot_id="s-2", name="bad"), "v-1")
    log.add("storage", VolumeFailed(operation="snapshot", reason="pool full"), "v-1", snap)
    attach = log.add("gateway", VolumeAttachRequested(instance_id="i-1"), "v-1")
    log.add(
        "compute", VolumeAttached(instance_id="i-1", host="hv", target_dev="vdb"), "v-1", attach
    )
    asked = log.add("gateway", VolumeRequested(name="gone", size_gb=1), "v-2")
    log.add("storage", VolumeCreated(name="gone", size_gb=1), "v-2", asked)
    log.add("gateway", VolumeDeletionRequested(), "v-2")
    asked = log.add("gateway", VolumeRequested(name="broken", size_gb=1, snapshot="s-9"), "v-3")
    log.add("storage", VolumeFailed(operation="create", reason="no snapshot"), "v-3", asked)

    live, rebuilt = log.live(), log.rebuilt()
    assert views(live) == views(rebuilt)
    assert views(restore(snapshot(live))) == views(live)
    statuses = {v: volume_status(live.volumes[v], live.instances) for v in ("v-1", "v-2", "v-3")}
    assert statuses == {"v-1": "in-use", "v-2": "deleting", "v-3": "error"}
    v1 = volume_view(live.volumes["v-1"], live.instances)
    assert [(s.id, s.status) for s in v1.snapshots] == [("s-1", "available"), ("s-2", "error")]
    assert (v1.parent, v1.clone_depth, v1.attachments[0].device) == ("image:img", 1, "vdb")


def test_an_attachment_ends_with_its_detach_or_its_instance() -> None:
    log = Log()
    log.add("gateway", api.InstanceRequested(name="web", flavor=TINY), "i-1")
    asked = log.add("gateway", VolumeRequested(name="data", size_gb=1), "v-1")
    log.add("storage", VolumeCreated(name="data", size_gb=1), "v-1", asked)
    attach = log.add("gateway", VolumeAttachRequested(instance_id="i-1"), "v-1")
    assert volume_status(log.live().volumes["v-1"], log.live().instances) == "attaching"
    log.add(
        "compute", VolumeAttached(instance_id="i-1", host="hv", target_dev="vdb"), "v-1", attach
    )
    for state in (log.live(), log.rebuilt()):
        assert state.instances["i-1"].attached_volumes == {"v-1": "vdb"}
    detach = log.add("gateway", VolumeDetachRequested(instance_id="i-1"), "v-1")
    state = log.live()
    assert volume_status(state.volumes["v-1"], state.instances) == "detaching"
    log.add("compute", VolumeDetached(instance_id="i-1", host="hv"), "v-1", detach)
    for state in (log.live(), log.rebuilt()):
        assert volume_status(state.volumes["v-1"], state.instances) == "available"
        assert state.instances["i-1"].attached_volumes == {}

    attach = log.add("gateway", VolumeAttachRequested(instance_id="i-1"), "v-1")
    log.add(
        "compute", VolumeAttached(instance_id="i-1", host="hv", target_dev="vdb"), "v-1", attach
    )
    log.add("compute", InstanceDeleted(host="hv"), "i-1")
    for state in (log.live(), log.rebuilt()):
        assert volume_status(state.volumes["v-1"], state.instances) == "available"


def test_a_boot_volume_is_listed_in_use_and_a_flattened_clone_has_no_parent() -> None:
    log = Log()
    log.add("gateway", api.InstanceRequested(name="web", flavor=TINY, image="img"), "i-1")
    log.add(
        "storage",
        VolumeCreated(
            name="web-boot", size_gb=1, parent="image:img", clone_depth=1, instance_id="i-1"
        ),
        "i-1",
    )
    log.add("storage", VolumeFlattened(reason="deep"), "i-1")
    state = log.rebuilt()
    boot = volume_view(state.volumes["i-1"], state.instances)
    assert (boot.status, boot.boot_of, boot.parent, boot.clone_depth) == ("in-use", "i-1", None, 0)
    assert [k[1] for k in state.tenant_volume_order["t-1"]] == ["i-1"]
    # The image it was cloned from, even once flattened (it was never asked for by a body).
    assert boot.image == "img"


def test_a_deleted_snapshot_leaves_the_volume_and_a_refused_one_shows_why() -> None:
    log = Log()
    log.add("gateway", VolumeRequested(name="data", size_gb=1), "v-1")
    log.add("storage", VolumeCreated(name="data", size_gb=1), "v-1")
    for snapshot_id in ("s-1", "s-2"):
        log.add("gateway", VolumeSnapshotRequested(snapshot_id=snapshot_id, name="s"), "v-1")
        log.add("storage", VolumeSnapshotCreated(snapshot_id=snapshot_id, name="s"), "v-1")
    log.add("gateway", VolumeSnapshotDeletionRequested(snapshot_id="s-1"), "v-1")
    deleting = log.live()
    assert deleting.volumes["v-1"].snapshots["s-1"].status == "deleting"
    log.add("storage", VolumeSnapshotDeleted(snapshot_id="s-1"), "v-1")
    log.add("gateway", VolumeSnapshotDeletionRequested(snapshot_id="s-2"), "v-1")
    refused = VolumeSnapshotDeletionFailed(snapshot_id="s-2", reason="busy", dependents=("v-9",))
    log.add("storage", refused, "v-1")
    for state in (log.live(), log.rebuilt(), restore(snapshot(log.live()))):
        [kept] = volume_view(state.volumes["v-1"], state.instances).snapshots
        assert (kept.id, kept.status, kept.fault) == ("s-2", "available", "delete: busy")
        assert "s-1" not in state.snapshot_volumes  # no clone can name it any more


def test_a_failed_extension_may_be_asked_again_and_a_pending_one_not() -> None:
    log = Log()
    log.add("gateway", VolumeRequested(name="data", size_gb=1), "v-1")
    log.add("storage", VolumeCreated(name="data", size_gb=1), "v-1")
    asked = log.add("gateway", VolumeExtendRequested(size_gb=3), "v-1")
    tenant = Principal(token_id="k", role="tenant", tenant_id="t-1")
    with pytest.raises(Problem, match="3 GiB"):  # pending: the same size again is refused
        volume_action(log.live(), tenant, "v-1", VolumeAction(action="extend", size_gb=3))
    log.add("storage", VolumeFailed(operation="extend", reason="pool full"), "v-1", asked)
    for state in (log.live(), log.rebuilt(), restore(snapshot(log.live()))):
        again = volume_action(state, tenant, "v-1", VolumeAction(action="extend", size_gb=3))
        assert again.status == 202
        assert state.volumes["v-1"].requested_size_gb == 3  # the quota counts what was asked
    log.add("gateway", VolumeExtendRequested(size_gb=3), "v-1")
    log.add("storage", VolumeExtended(size_gb=3), "v-1")
    for state in (log.live(), log.rebuilt()):
        assert state.volumes["v-1"].extensions == {}
        with pytest.raises(Problem, match="3 GiB"):
            volume_action(state, tenant, "v-1", VolumeAction(action="extend", size_gb=3))
