"""Evacuation as the scheduler runs it: only off a down host, fence before the rebuild,
compensation before it, the claim moved after it, and automatic evacuation per host."""

from __future__ import annotations

from tests.unit.scheduler.service_support import (
    Scheduler,
    event,
    heartbeat,
    only,
    registered,
    requested,
)

from virga_events import Envelope, Event
from virga_events.catalog.api import EvacuationRequested
from virga_events.catalog.compute import (
    InstanceRebuildFailed,
    InstanceRebuilt,
    InstanceStarted,
    UsageSampled,
)
from virga_events.catalog.flows import FlowCompleted, FlowFailed, FlowStarted
from virga_events.catalog.network import MigrationPortSwitched
from virga_events.catalog.scheduler import (
    HostMarkedDown,
    InstanceDisksFenceRequested,
    InstanceRebuildRequested,
    MigrationClaimMoved,
    MigrationDestinationClaimed,
    MigrationDestinationRefused,
    MigrationDestinationReleased,
    MigrationPortSwitchRequested,
)
from virga_events.catalog.storage import InstanceDisksFenced, InstanceDisksFenceFailed
from virga_runtime.hostcheck import placement_of, refusal
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import snapshot
from virga_scheduler.core.migration import destination_claim_id
from virga_scheduler.service import placed_on


def placed(config: SchedulerConfig | None = None) -> Scheduler:
    """i1 runs on h1 (the biggest host); h2 and h3 have room (none receives live migrations:
    an evacuation needs none)."""
    scheduler = Scheduler(config=config or SchedulerConfig())
    for n, name in enumerate(("h1", "h2", "h3")):
        scheduler.feed(registered(name, ram_mb=16384 - 1024 * n, seconds=n))
    scheduler.feed(requested("i1", seconds=5))
    assert scheduler.host_of("i1") == "h1"
    return scheduler


def h1_down(scheduler: Scheduler) -> list[Event]:
    scheduler.feed(heartbeat("h2", 30), heartbeat("h3", 30))
    emitted = scheduler.tick(40)  # h1 silent since 0
    assert only(emitted, HostMarkedDown)
    assert scheduler.state.down.keys() == {"h1"}
    return emitted


def evacuate(scheduler: Scheduler, host: str | None = None, seconds: float = 41) -> Envelope:
    asked = event(EvacuationRequested(host=host), "i1", "t-1", seconds=seconds)
    scheduler.feed(asked)
    return asked


def answer(scheduler: Scheduler, payload: Event, host: str, seconds: float = 42) -> list[Event]:
    return scheduler.feed(event(payload, "i1", "t-1", seconds=seconds, producer=f"agent@{host}"))


def test_an_evacuation_fences_then_switches_the_port_rebuilds_and_moves_the_claim() -> None:
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler).event_id
    emitted = scheduler.outputs_payloads()
    assert only(emitted, FlowStarted).definition == "evacuation"
    assert only(emitted, MigrationDestinationClaimed).host == "h2"
    fence = only(emitted, InstanceDisksFenceRequested)
    assert fence.host == "h1"
    assert not [e for e in emitted if isinstance(e, InstanceRebuildRequested)]  # not before
    assert placed_on(scheduler.state, "i1") == "h1"  # h1's reports count until the fence

    fenced = InstanceDisksFenced(
        flow_id=flow_id, step="fence", images=("volume-x",), broken=("volume-x",)
    )
    switch = only(answer(scheduler, fenced, "storage"), MigrationPortSwitchRequested)
    assert (switch.host, switch.source) == ("h2", "h1")
    assert placed_on(scheduler.state, "i1") == "h2"  # the dead host may no longer report

    switched = MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2")
    rebuild = only(answer(scheduler, switched, "h2"), InstanceRebuildRequested)
    assert (rebuild.source, rebuild.destination) == ("h1", "h2")
    assert rebuild.placement.host == "h2"

    rebuilt = InstanceRebuilt(flow_id=flow_id, step="rebuild", host="h2")
    emitted = answer(scheduler, rebuilt, "h2")
    only(emitted, MigrationClaimMoved)
    only(emitted, FlowCompleted)
    assert scheduler.host_of("i1") == "h2"
    assert scheduler.state.claims.usage_of("h1").vcpus == 0
    assert scheduler.state.claims.usage_of("h2").vcpus == 2
    assert scheduler.state.claims.get(destination_claim_id("i1", flow_id)) is None


def test_an_instance_whose_host_is_up_is_not_evacuated() -> None:
    scheduler = placed()
    evacuate(scheduler, seconds=6)
    refused = only(scheduler.outputs_payloads(), MigrationDestinationRefused)
    assert refused.reason == "host h1 of instance i1 is up: it is not evacuated"
    assert only(scheduler.outputs_payloads(), FlowFailed)
    assert scheduler.state.claims.usage_of("h2").vcpus == 0


def test_a_failed_fence_releases_the_destination_and_never_rebuilds() -> None:
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler, host="h3").event_id
    broke = InstanceDisksFenceFailed(flow_id=flow_id, step="fence", reason="ceph down")
    answer(scheduler, broke, "storage")  # the first failure is retried
    emitted = answer(scheduler, broke, "storage", seconds=43)
    released = only(emitted, MigrationDestinationReleased)
    assert released.reason == "evacuation failed: ceph down"
    failed = only(emitted, FlowFailed)
    assert failed.compensated == ("claim",)
    assert not [e for e in scheduler.outputs_payloads() if isinstance(e, InstanceRebuildRequested)]
    assert scheduler.host_of("i1") == "h1"
    assert scheduler.state.claims.usage_of("h3").vcpus == 0


def test_a_failed_rebuild_moves_the_port_back_and_releases_the_destination() -> None:
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler).event_id
    answer(scheduler, InstanceDisksFenced(flow_id=flow_id, step="fence"), "storage")
    answer(scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2")
    broke = InstanceRebuildFailed(flow_id=flow_id, step="rebuild", host="h2", reason="no disk")
    emitted = answer(scheduler, broke, "h2")
    back = only(emitted, MigrationPortSwitchRequested)
    assert (back.host, back.source) == ("h1", "h2")
    only(emitted, MigrationDestinationReleased)
    assert only(emitted, FlowFailed).reason == "no disk"
    assert scheduler.host_of("i1") == "h1"
    assert placed_on(scheduler.state, "i1") == "h1"


def test_a_rebuild_answered_by_another_host_is_ignored() -> None:
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler, host="h2").event_id
    answer(scheduler, InstanceDisksFenced(flow_id=flow_id, step="fence"), "storage")
    answer(scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2")
    assert (
        answer(scheduler, InstanceRebuilt(flow_id=flow_id, step="rebuild", host="h3"), "h3") == []
    )


def test_automatic_evacuation_starts_a_flow_per_instance_of_a_named_host_only() -> None:
    scheduler = placed(SchedulerConfig(auto_evacuate=frozenset({"h1"})))
    emitted = h1_down(scheduler)
    assert only(emitted, FlowStarted).subject == "i1"
    assert only(emitted, InstanceDisksFenceRequested).host == "h1"

    off = placed()
    assert not [e for e in h1_down(off) if isinstance(e, FlowStarted)]
    everywhere = placed(SchedulerConfig(auto_evacuate=frozenset({"*"})))
    assert only(h1_down(everywhere), FlowStarted).definition == "evacuation"


def test_a_running_evacuation_survives_a_snapshot() -> None:
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler).event_id
    answer(scheduler, InstanceDisksFenced(flow_id=flow_id, step="fence"), "storage")
    restored = snapshot.restore(snapshot.snapshot(scheduler.state), scheduler.state.ratios)
    scheduler.state = restored
    answer(scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2")
    emitted = answer(scheduler, InstanceRebuilt(flow_id=flow_id, step="rebuild", host="h2"), "h2")
    only(emitted, FlowCompleted)
    assert scheduler.host_of("i1") == "h2"


def test_after_the_fence_only_the_destination_reports_usage_so_billing_follows_it() -> None:
    """The dead host, back, may not report on the guest once its disks are fenced (its usage
    would be a second charge); the destination's start, answer and usage are taken."""
    scheduler = placed()
    h1_down(scheduler)
    flow_id = evacuate(scheduler).event_id
    families = ("ns.network", "ns.compute")

    def refused(host: str, payload: Event) -> str | None:
        envelope = event(payload, "i1", "t-1", seconds=43, producer=f"compute@{host}")
        placement = placement_of(placed_on, scheduler.state)
        return refusal(f"ns.compute.{host}", envelope, families, placement)

    def usage(host: str) -> UsageSampled:
        return UsageSampled(
            host=host,
            period_seconds=3.0,
            cpu_time_ns=1,
            memory_kb=1,
            disk_read_bytes=0,
            disk_write_bytes=0,
            net_rx_bytes=0,
            net_tx_bytes=0,
        )

    assert refused("h1", usage("h1")) is None  # not fenced yet: it is still h1's
    answer(scheduler, InstanceDisksFenced(flow_id=flow_id, step="fence"), "storage")
    assert refused("h1", usage("h1")) is not None
    assert refused("h2", InstanceStarted(host="h2")) is None
    assert refused("h2", InstanceRebuilt(flow_id=flow_id, step="rebuild", host="h2")) is None
    answer(scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2")
    answer(scheduler, InstanceRebuilt(flow_id=flow_id, step="rebuild", host="h2"), "h2")
    assert refused("h1", usage("h1")) is not None
    assert refused("h2", usage("h2")) is None
