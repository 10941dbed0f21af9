"""Volume attach and detach in the agent's pure core and its effect handlers (memory driver)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from virga_compute.ceph_access import CephSettings
from virga_compute.config import ComputeConfig
from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import CephMonitor, DiskSpec, InstanceSpec
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.intents import (
    AttachVolume,
    Destroy,
    DetachVolume,
    GrowDisk,
    Reconcile,
    Spawn,
)
from virga_compute.effects.lifecycle import ComputeEffects
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceDeletionRequested
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeAttachRequested,
    VolumeDetached,
    VolumeDetachRequested,
)
from virga_events.catalog.compute import InstanceDeleted, InstanceStarted, InstanceStopped
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeExtended
from virga_runtime import Emit, Intent

HOST = "host-1"
ME = f"compute@{HOST}"
CEPH = CephSettings(monitors=(CephMonitor("10.0.0.1"),), user=None)
CONFIG = ComputeConfig(host=HOST, ceph=CEPH)
VOLUME = "0f8e3c52-6b1d-4c3e-9a47-1d2b3c4d5e6f"


def envelope(event: Event, aggregate: str, producer: str = "gateway") -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t-1", producer=producer)


def attach(volume_id: str = VOLUME, instance_id: str = "i-1") -> Envelope:
    return envelope(VolumeAttachRequested(instance_id=instance_id), volume_id)


def detach(volume_id: str = VOLUME, instance_id: str = "i-1") -> Envelope:
    return envelope(VolumeDetachRequested(instance_id=instance_id), volume_id)


def mine(event: Event, aggregate: str = "i-1") -> Envelope:
    return envelope(event, aggregate, producer=ME)


def running(image: str | None = "img-1") -> ComputeState:
    """An instance i-1 running on this host (from an image: its boot volume is vda)."""
    flavor = Flavor(name="m1", vcpus=1, ram_mb=256, disk_gb=1)
    placed = InstanceScheduled(
        host=HOST, rack="r", zone="z", attempt=1, name="vm", flavor=flavor, image=image
    )
    state = ComputeState(host=HOST)
    for event in (
        envelope(placed, "i-1", producer="scheduler"),
        envelope(VolumeCreated(name="b", size_gb=1, instance_id="i-1"), "i-1", "storage"),
        mine(InstanceStarted(host=HOST)),
    ):
        state = evolve(state, event)
    return state


def live(state: ComputeState, event: Envelope) -> Sequence[Intent]:
    return decide(CONFIG, evolve(state, event), event)


def disk(target: str, volume_id: str = VOLUME) -> DiskSpec:
    return DiskSpec(target, CEPH.source(volume_id), serial=volume_id[:20])


def test_an_attach_takes_the_next_free_target_after_the_boot_volume() -> None:
    state = running()
    assert live(state, attach()) == [AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb"))]
    # A second request in the same batch, before the first is carried out, gets vdc.
    assert live(state, attach("v-2")) == [
        AttachVolume("i-1", "t-1", HOST, "v-2", disk("vdc", "v-2"))
    ]


def test_without_a_boot_volume_the_first_attached_volume_is_vdb_too() -> None:
    state = running(image=None)
    [intent] = live(state, attach())
    assert isinstance(intent, AttachVolume)
    assert intent.disk.target_dev == "vdb"


def test_an_attached_volume_joins_the_spec_so_a_lost_domain_comes_back_with_it() -> None:
    state = running()
    live(state, attach())
    evolve(state, mine(VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb"), VOLUME))
    assert state.instances["i-1"].attachments == {VOLUME: "vdb"}
    reconcile = on_ready(CONFIG, state)[1]
    assert isinstance(reconcile, Reconcile)
    assert [d.target_dev for d in reconcile.expected[0].spec.disks] == ["vda", "vdb"]
    # Asked again: the same answer, nothing done.
    again = VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb")
    assert live(state, attach()) == [Emit(again, VOLUME, "t-1")]


def test_a_failed_attach_frees_its_target() -> None:
    state = running()
    live(state, attach())
    failure = VolumeAttachmentFailed(instance_id="i-1", operation="attach", reason="x")
    evolve(state, mine(failure, VOLUME))
    assert state.instances["i-1"].attaching == {}
    assert live(state, attach("v-2")) == [
        AttachVolume("i-1", "t-1", HOST, "v-2", disk("vdb", "v-2"))
    ]


def test_requests_for_another_hosts_instance_are_not_ours() -> None:
    assert live(running(), attach(instance_id="i-other")) == ()
    assert live(running(), detach(instance_id="i-other")) == ()


def test_a_detach_unplugs_the_volume_from_its_target() -> None:
    state = running()
    live(state, attach())
    evolve(state, mine(VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb"), VOLUME))
    assert live(state, detach()) == [DetachVolume("i-1", "t-1", HOST, VOLUME, "vdb")]
    evolve(state, mine(VolumeDetached(instance_id="i-1", host=HOST), VOLUME))
    assert state.instances["i-1"].attachments == {}
    # Detached already: a repeated request is answered as done.
    assert live(state, detach()) == [
        Emit(VolumeDetached(instance_id="i-1", host=HOST), VOLUME, "t-1")
    ]


def test_attach_is_refused_while_the_instance_is_built_or_deleted() -> None:
    flavor = Flavor(name="m1", vcpus=1, ram_mb=256, disk_gb=1)
    placed = InstanceScheduled(
        host=HOST, rack="r", zone="z", attempt=1, name="vm", flavor=flavor, image="img"
    )
    state = evolve(ComputeState(host=HOST), envelope(placed, "i-1", producer="scheduler"))
    [refusal] = live(state, attach())
    assert isinstance(refusal, Emit)
    assert refusal.payload == VolumeAttachmentFailed(
        instance_id="i-1", operation="attach", reason="the instance is still being built"
    )
    state = running()
    live(state, envelope(InstanceDeletionRequested(), "i-1"))
    [refusal] = live(state, attach())
    assert isinstance(refusal, Emit)
    assert isinstance(refusal.payload, VolumeAttachmentFailed)
    assert refusal.payload.reason == "the instance is being deleted"


def test_deleting_an_instance_detaches_its_volumes() -> None:
    state = running()
    live(state, attach())
    evolve(state, mine(VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb"), VOLUME))
    live(state, attach("v-2"))  # still in flight when the deletion comes
    assert live(state, envelope(InstanceDeletionRequested(), "i-1")) == [
        Destroy("i-1", "t-1", HOST, tuple(sorted((VOLUME, "v-2"))))
    ]


# -- effects over the memory driver --------------------------------------------------------------


@pytest.fixture
def driver() -> MemoryComputeDriver:
    return MemoryComputeDriver()


async def test_attach_and_detach_change_the_domain_and_say_so(driver: MemoryComputeDriver) -> None:
    effects = ComputeEffects(driver)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256), "t-1", HOST))
    attach_effect = AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb"))
    attached = Emit(VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb"), VOLUME, "t-1")
    assert await effects.attach_volume(attach_effect) == [attached]
    assert await effects.attach_volume(attach_effect) == [attached]  # re-run after a crash
    assert await driver.attached_disks("i-1") == ["vdb"]
    detached = Emit(VolumeDetached(instance_id="i-1", host=HOST), VOLUME, "t-1")
    detach_effect = DetachVolume("i-1", "t-1", HOST, VOLUME, "vdb")
    assert await effects.detach_volume(detach_effect) == [detached]
    assert await effects.detach_volume(detach_effect) == [detached]
    assert await driver.attached_disks("i-1") == []


async def test_without_live_hot_plug_a_running_instance_refuses_and_a_stopped_one_accepts() -> None:
    driver = MemoryComputeDriver(live_disk_attach=False)
    effects = ComputeEffects(driver)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256), "t-1", HOST))
    [refused] = await effects.attach_volume(AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb")))
    assert isinstance(refused.payload, VolumeAttachmentFailed)
    assert "hot-plug" in refused.payload.reason
    assert await driver.attached_disks("i-1") == []
    await driver.stop("i-1")
    [done] = await effects.attach_volume(AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb")))
    assert isinstance(done.payload, VolumeAttached)
    assert await driver.attached_disks("i-1") == ["vdb"]


async def test_attaching_to_an_instance_without_a_domain_fails_with_a_reason(
    driver: MemoryComputeDriver,
) -> None:
    effects = ComputeEffects(driver)
    [refused] = await effects.attach_volume(AttachVolume("i-9", "t-1", HOST, VOLUME, disk("vdb")))
    assert refused.payload == VolumeAttachmentFailed(
        instance_id="i-9", operation="attach", reason="the instance has no domain on its host"
    )


async def test_destroy_reports_the_instance_deleted_then_its_volumes_detached(
    driver: MemoryComputeDriver,
) -> None:
    effects = ComputeEffects(driver)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256), "t-1", HOST))
    emits = await effects.destroy(Destroy("i-1", "t-1", HOST, (VOLUME,)))
    assert emits == [
        Emit(InstanceDeleted(host=HOST), "i-1", "t-1"),
        Emit(VolumeDetached(instance_id="i-1", host=HOST), VOLUME, "t-1"),
    ]


def test_a_stopped_instance_takes_an_attach_too() -> None:
    state = running()
    evolve(state, mine(InstanceStopped(host=HOST)))
    [intent] = live(state, attach())
    assert isinstance(intent, AttachVolume)


class SlowGuest(MemoryComputeDriver):
    """A guest that lets go of an unplugged disk only after `asks` detach requests."""

    def __init__(self, asks: int) -> None:
        super().__init__()
        self.asks, self.requests = asks, 0

    async def detach_disk(self, instance_id: str, target_dev: str) -> None:
        self.requests += 1
        if self.requests >= self.asks:
            await super().detach_disk(instance_id, target_dev)


async def test_a_live_detach_asks_again_until_the_guest_lets_go() -> None:
    driver = SlowGuest(asks=2)  # e.g. still booting when first asked
    effects = ComputeEffects(driver, ask_again_seconds=0.01)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256), "t-1", HOST))
    await effects.attach_volume(AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb")))
    [done] = await effects.detach_volume(DetachVolume("i-1", "t-1", HOST, VOLUME, "vdb"))
    assert done.payload == VolumeDetached(instance_id="i-1", host=HOST)
    assert driver.requests == 2


async def test_a_guest_that_never_lets_go_fails_the_detach_and_keeps_the_volume() -> None:
    driver = SlowGuest(asks=1_000)
    effects = ComputeEffects(driver, detach_seconds=0)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256), "t-1", HOST))
    await effects.attach_volume(AttachVolume("i-1", "t-1", HOST, VOLUME, disk("vdb")))
    [failed] = await effects.detach_volume(DetachVolume("i-1", "t-1", HOST, VOLUME, "vdb"))
    assert isinstance(failed.payload, VolumeAttachmentFailed)
    assert failed.payload.operation == "detach"
    assert "did not release vdb" in failed.payload.reason
    assert await driver.attached_disks("i-1") == ["vdb"]


GiB = 1 << 30


def test_a_grown_volume_is_told_to_the_running_guest_that_uses_it() -> None:
    attached = VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb")
    state = evolve(running(), mine(attached, VOLUME))
    grown = envelope(VolumeExtended(size_gb=5), VOLUME, "storage")
    assert live(state, grown) == [GrowDisk("i-1", VOLUME, "vdb", 5 * GiB)]
    boot = envelope(VolumeExtended(size_gb=3), "i-1", "storage")  # the boot volume's id
    assert live(state, boot) == [GrowDisk("i-1", "i-1", "vda", 3 * GiB)]
    # A volume no instance here uses, and a stopped instance, need nothing.
    assert live(state, envelope(VolumeExtended(size_gb=5), "v-other", "storage")) == ()
    stopped = evolve(state, mine(InstanceStopped(host=HOST)))
    assert live(stopped, grown) == ()


async def test_growing_a_disk_tells_a_running_guest_and_never_fails(
    driver: MemoryComputeDriver,
) -> None:
    effects = ComputeEffects(driver)
    await effects.spawn(Spawn(InstanceSpec("i-1", "vm", 1, 256, disks=(disk("vdb"),)), "t-1", HOST))
    assert await effects.grow_disk(GrowDisk("i-1", VOLUME, "vdb", 5 * GiB)) == ()
    assert driver.disk_size("i-1", "vdb") == 5 * GiB
    await effects.grow_disk(GrowDisk("i-1", VOLUME, "vdb", 3 * GiB))  # stale: never shrinks
    assert driver.disk_size("i-1", "vdb") == 5 * GiB
    # No such domain any more, or no hot-plug: logged; the guest sees the size when it starts.
    assert await effects.grow_disk(GrowDisk("i-9", VOLUME, "vdb", 5 * GiB)) == ()
    cold = ComputeEffects(MemoryComputeDriver(live_disk_attach=False))
    assert await cold.grow_disk(GrowDisk("i-1", VOLUME, "vdb", 5 * GiB)) == ()


def test_each_start_tells_running_guests_of_their_disks_growths_again() -> None:
    """An agent down when a volume grew never decided it: its next start tells the guest."""
    attached = VolumeAttached(instance_id="i-1", host=HOST, target_dev="vdb")
    state = evolve(running(), mine(attached, VOLUME))
    for grown in (
        envelope(VolumeExtended(size_gb=5), VOLUME, "storage"),
        envelope(VolumeExtended(size_gb=8), VOLUME, "storage"),
        envelope(VolumeExtended(size_gb=3), "i-1", "storage"),
        envelope(VolumeExtended(size_gb=9), "v-elsewhere", "storage"),
    ):
        state = evolve(state, grown)
    restored = restore(snapshot(state))
    assert restored == state
    retold = [i for i in on_ready(CONFIG, restored) if isinstance(i, GrowDisk)]
    assert retold == [
        GrowDisk("i-1", VOLUME, "vdb", 8 * GiB),
        GrowDisk("i-1", "i-1", "vda", 3 * GiB),
    ]
    detached = evolve(state, mine(VolumeDetached(instance_id="i-1", host=HOST), VOLUME))
    assert [i.volume_id for i in on_ready(CONFIG, detached) if isinstance(i, GrowDisk)] == ["i-1"]
    stopped = evolve(state, mine(InstanceStopped(host=HOST)))
    assert [i for i in on_ready(CONFIG, stopped) if isinstance(i, GrowDisk)] == []
