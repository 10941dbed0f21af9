"""Live migration as the scheduler runs it: claims on both hosts, agents' answers, rollback."""

from __future__ import annotations

from tests.unit.scheduler.service_support import (
    Scheduler,
    event,
    only,
    requested,
)
from tests.unit.scheduler.service_support import registered as registered_deaf

from virga_events import Envelope, Event
from virga_events.catalog.api import LiveMigrationRequested
from virga_events.catalog.compute import (
    HostRegistered,
    InstanceDeleted,
    InstanceMigrated,
    InstanceMigrationFailed,
)
from virga_events.catalog.flows import (
    FlowCompleted,
    FlowFailed,
    FlowStepCompensated,
    FlowStepFailed,
)
from virga_events.catalog.network import MigrationPortPlumbed, MigrationPortSwitched, PortBound
from virga_events.catalog.scheduler import (
    InstanceMigrationRequested,
    MigrationClaimMoved,
    MigrationDestinationClaimed,
    MigrationDestinationRefused,
    MigrationDestinationReleased,
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_runtime.hostcheck import placement_of, refusal
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import snapshot
from virga_scheduler.core.migration import destination_claim_id
from virga_scheduler.service import placed_on


def registered(name: str, *, ram_mb: int = 8192, seconds: float = 0) -> Envelope:
    """A host that receives live migrations (its agent announced a migration URI)."""
    uri = f"qemu+tcp://{name}/system"
    return registered_deaf(name, ram_mb=ram_mb, seconds=seconds, migration_uri=uri)


def placed() -> Scheduler:
    """i1 runs on h1 (the biggest host, so spread put it there); h2 and h3 have room."""
    scheduler = Scheduler()
    for n, name in enumerate(("h1", "h2", "h3")):
        scheduler.feed(registered(name, ram_mb=16384 - 1024 * n, seconds=n))
    scheduler.feed(requested("i1", seconds=5))
    assert scheduler.host_of("i1") == "h1"
    return scheduler


def migrate(scheduler: Scheduler, host: str | None = None, seconds: float = 10) -> Envelope:
    asked = event(LiveMigrationRequested(host=host), "i1", "t-1", seconds=seconds)
    scheduler.feed(asked)
    return asked


def answer(scheduler: Scheduler, payload: Event, host: str, seconds: float = 11) -> list[Event]:
    return scheduler.feed(event(payload, "i1", "t-1", seconds=seconds, producer=f"agent@{host}"))


def test_a_migration_claims_the_destination_then_runs_step_by_step_to_a_moved_claim() -> None:
    scheduler = placed()
    flow_id = migrate(scheduler).event_id
    claimed = only(scheduler.outputs_payloads(), MigrationDestinationClaimed)
    assert claimed.host == "h2"
    plumb = only(scheduler.outputs_payloads(), MigrationPortPlumbRequested)
    assert plumb.host == "h2"
    # Both hosts hold the instance's resources while it moves.
    assert scheduler.state.claims.usage_of("h1").vcpus == 2
    assert scheduler.state.claims.usage_of("h2").vcpus == 2

    emitted = answer(
        scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h2"), "h2"
    )
    asked = only(emitted, InstanceMigrationRequested)
    assert (asked.source, asked.destination) == ("h1", "h2")
    moved = InstanceMigrated(
        flow_id=flow_id, step="migrate", host="h1", destination="h2", seconds=1.2
    )
    only(answer(scheduler, moved, "h1"), MigrationPortSwitchRequested)
    emitted = answer(
        scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2"
    )
    only(emitted, MigrationClaimMoved)
    only(emitted, FlowCompleted)
    assert scheduler.host_of("i1") == "h2"
    assert scheduler.state.claims.usage_of("h1").vcpus == 0
    assert scheduler.state.claims.usage_of("h2").vcpus == 2
    assert scheduler.state.claims.get(destination_claim_id("i1", flow_id)) is None


def test_a_failed_migration_releases_the_destination_and_leaves_the_instance_at_the_source() -> (
    None
):
    scheduler = placed()
    flow_id = migrate(scheduler, host="h3").event_id
    answer(scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h3"), "h3")
    broke = InstanceMigrationFailed(flow_id=flow_id, step="migrate", host="h1", reason="no route")
    emitted = answer(scheduler, broke, "h1")
    assert [type(e) for e in emitted] == [
        FlowStepFailed,
        FlowStepCompensated,
        MigrationPortUnplumbRequested,
        FlowStepCompensated,
        MigrationDestinationReleased,
        FlowFailed,
    ]
    failed = only(emitted, FlowFailed)
    assert failed.reason == "no route"
    assert failed.compensated == ("plumb", "claim")
    assert only(emitted, MigrationDestinationReleased).reason == "migration failed: no route"
    assert scheduler.host_of("i1") == "h1"
    assert scheduler.state.claims.usage_of("h3").vcpus == 0


def test_an_answer_from_another_host_than_the_one_asked_is_ignored() -> None:
    scheduler = placed()
    flow_id = migrate(scheduler, host="h2").event_id
    assert (
        answer(scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h3"), "h3")
        == []
    )
    moved = InstanceMigrated(
        flow_id=flow_id, step="migrate", host="h2", destination="h2", seconds=1.0
    )
    assert answer(scheduler, moved, "h2") == []
    assert scheduler.state.flows.flows[flow_id].step == "plumb"


def test_a_destination_that_cannot_take_the_instance_is_refused_and_nothing_is_held() -> None:
    scheduler = placed()
    migrate(scheduler, host="h1")
    refused = only(scheduler.outputs_payloads(), MigrationDestinationRefused)
    assert "already runs on host h1" in refused.reason
    failed = only(scheduler.outputs_payloads(), FlowFailed)
    assert failed.compensated == ()
    scheduler.feed(registered("tiny", ram_mb=512, seconds=20))
    migrate(scheduler, host="tiny", seconds=21)
    reasons = [e.reason for e in scheduler.outputs_payloads() if isinstance(e, FlowFailed)]
    assert len(reasons) == 2
    assert "host tiny" in reasons[1]
    assert scheduler.state.claims.usage_of("tiny").vcpus == 0


def test_a_step_past_its_deadline_fails_the_migration_and_undoes_the_claim() -> None:
    scheduler = Scheduler(SchedulerConfig(heartbeat_timeout_seconds=3600))
    for name in ("h1", "h2"):
        scheduler.feed(registered(name))
    scheduler.feed(requested("i1", seconds=5))
    flow_id = migrate(scheduler).event_id
    assert scheduler.tick(69) == []
    emitted = scheduler.tick(70)
    assert only(emitted, FlowFailed).reason == "plumb timed out after 60 s"
    only(emitted, MigrationDestinationReleased)
    assert scheduler.state.claims.usage_of("h2").vcpus == 0
    assert scheduler.state.flows.flows[flow_id].outcome == "failed"


def test_one_migration_at_a_time_and_a_snapshot_keeps_the_flow() -> None:
    scheduler = placed()
    flow_id = migrate(scheduler).event_id
    before = len(scheduler.outputs)
    migrate(scheduler, seconds=12)
    assert len(scheduler.outputs) == before
    restored = snapshot.restore(snapshot.snapshot(scheduler.state))
    assert restored.flows == scheduler.state.flows
    assert restored.claims.get(destination_claim_id("i1", flow_id)) is not None


def test_an_instance_deleted_while_it_moves_leaves_no_claim_behind() -> None:
    scheduler = placed()
    flow_id = migrate(scheduler, host="h2").event_id
    answer(scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h2"), "h2")
    moved = InstanceMigrated(
        flow_id=flow_id, step="migrate", host="h1", destination="h2", seconds=1.0
    )
    answer(scheduler, moved, "h1")
    scheduler.feed(event(InstanceDeleted(host="h1"), "i1", "t-1", seconds=12))
    answer(
        scheduler,
        MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"),
        "h2",
        seconds=13,
    )
    assert scheduler.state.flows.flows[flow_id].outcome == "completed"
    assert scheduler.state.claims.get(destination_claim_id("i1", flow_id)) is None
    assert scheduler.host_of("i1") is None
    assert scheduler.state.claims.usage_of("h2").vcpus == 0


def test_an_instance_placed_nowhere_is_not_migrated() -> None:
    scheduler = Scheduler()
    scheduler.feed(requested("i9"))  # no host yet: refused
    scheduler.feed(event(LiveMigrationRequested(host=None), "i9", "t-1", seconds=10))
    failed = only(scheduler.outputs_payloads(), FlowFailed)
    assert failed.reason == "instance i9 is placed on no host"


def test_a_host_that_cannot_receive_is_never_the_destination() -> None:
    scheduler = placed()
    scheduler.feed(registered_deaf("h2", ram_mb=16384 - 1024, seconds=6))  # re-registered deaf
    refused = only(
        scheduler.feed(event(LiveMigrationRequested(host="h2"), "i1", "t-1", seconds=10)),
        MigrationDestinationRefused,
    )
    assert refused.reason == "host h2 cannot receive live migrations"
    # Picked by the filters, the destination is the one host left that receives: h3.
    emitted = scheduler.feed(event(LiveMigrationRequested(), "i1", "t-1", seconds=20))
    assert only(emitted, MigrationDestinationClaimed).host == "h3"


def test_the_source_is_told_how_to_reach_the_destination_and_what_it_adopts() -> None:
    scheduler = placed()
    flow_id = migrate(scheduler).event_id
    emitted = answer(
        scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h2"), "h2"
    )
    asked = only(emitted, InstanceMigrationRequested)
    assert asked.destination_uri == "qemu+tcp://h2/system"
    assert asked.placement is not None
    assert (asked.placement.host, asked.placement.name) == ("h2", "vm-i1")
    assert asked.placement.attempt == 1


def test_the_flow_id_is_the_one_the_gateway_chose() -> None:
    scheduler = placed()
    emitted = scheduler.feed(
        event(LiveMigrationRequested(flow_id="f-chosen"), "i1", "t-1", seconds=10)
    )
    assert only(emitted, MigrationDestinationClaimed).flow_id == "f-chosen"


def test_the_source_is_told_the_destinations_ceph_identity_and_snapshots_keep_it() -> None:
    scheduler = placed()
    secret = "8a4c7e1e-7d7b-5b1a-9a56-0c5c8d1f2e3a"
    again = HostRegistered(
        rack="r1", zone="az1", vcpus=4, ram_mb=16384 - 1024, disk_gb=200,
        migration_uri="qemu+tcp://h2/system", ceph_user="virga-compute-h2", ceph_secret_uuid=secret,
    )  # fmt: skip
    scheduler.feed(event(again, "h2", seconds=6, producer="compute@h2"))
    flow_id = migrate(scheduler, host="h2").event_id
    emitted = answer(
        scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h2"), "h2"
    )
    asked = only(emitted, InstanceMigrationRequested)
    assert (asked.destination_ceph_user, asked.destination_ceph_secret_uuid) == (
        "virga-compute-h2",
        secret,
    )
    saved = snapshot.snapshot(scheduler.state)
    assert snapshot.restore(saved).migration_targets == scheduler.state.migration_targets
    # A snapshot from before hosts announced a Ceph identity: (URI, address) per host.
    saved["migration_targets"] = {"h3": ["qemu+tcp://h3/system", None]}
    (target,) = snapshot.restore(saved).migration_targets.values()
    assert (target.uri, target.ceph_user, target.ceph_secret_uuid) == (
        "qemu+tcp://h3/system",
        None,
        None,
    )


def test_once_the_guest_moved_the_destinations_reports_on_it_are_accepted() -> None:
    """Between `migrate` and `release_source` the guest runs on the destination while the
    claim is still the source's: the destination's network agent binds its port there
    (`switch_port`), and its PortBound must not be refused as a foreign host's (it was: the
    scheduler dead-lettered it, in every live migration end to end)."""
    scheduler = placed()
    flow_id = migrate(scheduler).event_id
    answer(scheduler, MigrationPortPlumbed(flow_id=flow_id, step="plumb", host="h2"), "h2")
    families = ("ns.network", "ns.compute")

    def refused(host: str) -> str | None:
        bound = PortBound(host=host, network_id="n-1", mac="02:00:00:00:00:01", tap="vt-1",
                          instance_id="i1", ips=("10.0.0.5",))  # fmt: skip
        envelope = event(bound, "port-1", "t-1", seconds=12, producer=f"network@{host}")
        placement = placement_of(placed_on, scheduler.state)
        return refusal(f"ns.network.{host}", envelope, families, placement)

    assert refused("h2") is not None  # still moving: the source runs it
    assert refused("h1") is None
    moved = InstanceMigrated(flow_id=flow_id, step="migrate", host="h1", destination="h2",
                             seconds=1.2)  # fmt: skip
    answer(scheduler, moved, "h1")
    assert refused("h2") is None
    assert refused("h1") is not None
    answer(scheduler, MigrationPortSwitched(flow_id=flow_id, step="switch_port", host="h2"), "h2")
    assert scheduler.host_of("i1") == "h2"
    assert refused("h2") is None
