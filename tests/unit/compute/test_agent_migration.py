"""The compute agents' part in a live migration: the source migrates and forgets, the
destination adopts (`core.migration`, `effects.migration`), over the memory driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import orjson

from virga_compute.ceph_access import CephSettings
from virga_compute.config import ComputeConfig
from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.power import PowerChanged, on_guest
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import CephMonitor, DomainState, InstanceSpec
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.intents import Destroy, MigrateLive, Reconcile, RegisterHost
from virga_compute.effects.migration import migration_handlers
from virga_events import REGISTRY, Envelope, Event, decode, encode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceDeletionRequested
from virga_events.catalog.compute import (
    HostRegistered,
    InstanceMigrated,
    InstanceMigrationFailed,
    InstanceStarted,
)
from virga_events.catalog.flows import FlowFailed, FlowStepCompleted
from virga_events.catalog.scheduler import InstanceMigrationRequested, InstanceScheduled
from virga_runtime import Emit, Intent

SOURCE, DESTINATION = "host-a", "host-b"
URI = "qemu+tcp://host-b/system"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=256, disk_gb=1)
FLOW = "flow-1"
SECRET_A, SECRET_B = "3e1f5bf8-4619-5740-953e-dabb0485c461", "8a4c7e1e-7d7b-5b1a-9a56-0c5c8d1f2e3a"


def config(host: str, **kwargs: object) -> ComputeConfig:
    return ComputeConfig(host=host, rack="r1", zone="z1", **kwargs)  # type: ignore[arg-type]


def placement(host: str) -> InstanceScheduled:
    return InstanceScheduled(
        host=host, rack="r1", zone="z1", attempt=1, name="vm", flavor=SMALL, hostname="vm-1"
    )


def envelope(event: Event, producer: str, seconds: float = 0, aggregate: str = "i-1") -> Envelope:
    return new_event(
        event,
        aggregate_id=aggregate,
        tenant_id="t-1",
        producer=producer,
        occurred_at=T0 + timedelta(seconds=seconds),
    )


def request(uri: str | None = URI, flow_id: str = FLOW) -> Envelope:
    asked = InstanceMigrationRequested(
        flow_id=flow_id,
        step="migrate",
        source=SOURCE,
        destination=DESTINATION,
        destination_uri=uri,
        migration_address="127.0.0.2",
        placement=placement(DESTINATION),
    )
    return envelope(asked, "scheduler", 10)


def running_on(host: str) -> ComputeState:
    """i-1 placed on `host` and started there."""
    state = ComputeState(host)
    for event in (
        envelope(placement(host), "scheduler"),
        envelope(InstanceStarted(host=host), f"compute@{host}", 1),
    ):
        state = evolve(state, event)
    return state


def payloads(intents: Sequence[Intent]) -> list[object]:
    return [intent.payload if isinstance(intent, Emit) else intent for intent in intents]


def test_the_source_migrates_to_where_the_destination_registered_then_forgets_the_instance() -> (
    None
):
    cfg = config(SOURCE)
    state = running_on(SOURCE)
    asked = request()
    state = evolve(state, asked)
    (intent,) = decide(cfg, state, asked)
    assert isinstance(intent, MigrateLive)
    assert (intent.destination, intent.destination_uri, intent.migration_address) == (
        DESTINATION,
        URI,
        "127.0.0.2",
    )
    assert intent.timeout == cfg.migration_timeout_seconds
    # While it moves, what the hypervisor says about it here is left alone.
    gone = PowerChanged("i-1", DomainState.MISSING, None, T0 + timedelta(seconds=11))
    assert on_guest(cfg, state, gone) == ()
    (reconcile,) = [i for i in on_ready(cfg, state) if isinstance(i, Reconcile)]
    assert reconcile.leave_alone == ("i-1",)

    moved = InstanceMigrated(
        flow_id=FLOW, step="migrate", host=SOURCE, destination=DESTINATION, seconds=1.5
    )
    state = evolve(state, envelope(moved, f"compute@{SOURCE}", 12))
    assert state.mine("i-1") is None  # forgotten, and nothing destroyed it
    # A repeated request (the scheduler restarted) is answered the same, never moved twice.
    again = envelope(asked.payload, "scheduler", 20)
    state = evolve(state, again)
    (answer,) = payloads(decide(cfg, state, again))
    assert answer == moved
    # A deletion now is the destination's to carry out.
    deleting = envelope(InstanceDeletionRequested(), "gateway", 30)
    state = evolve(state, deleting)
    assert not [i for i in decide(cfg, state, deleting) if isinstance(i, Destroy)]


def test_a_repeated_request_while_the_migration_runs_starts_no_second_one() -> None:
    cfg = config(SOURCE)
    state = evolve(running_on(SOURCE), request())
    repeated = envelope(request().payload, "scheduler", 15)
    state = evolve(state, repeated)
    assert not decide(cfg, state, repeated)


def test_the_source_refuses_what_it_cannot_migrate() -> None:
    cfg = config(SOURCE)
    state = running_on(SOURCE)
    deaf = request(uri=None)
    state = evolve(state, deaf)
    (failed,) = payloads(decide(cfg, state, deaf))
    assert isinstance(failed, InstanceMigrationFailed)
    assert failed.reason == f"host {DESTINATION} cannot receive live migrations"
    nowhere = ComputeState(SOURCE)
    asked = request(flow_id="flow-2")
    nowhere = evolve(nowhere, asked)
    (failed,) = payloads(decide(cfg, nowhere, asked))
    assert isinstance(failed, InstanceMigrationFailed)
    assert failed.reason == f"instance i-1 is not on host {SOURCE}"


def test_a_failed_migration_leaves_the_instance_running_at_the_source() -> None:
    cfg = config(SOURCE)
    state = evolve(running_on(SOURCE), request())
    failed = InstanceMigrationFailed(flow_id=FLOW, step="migrate", host=SOURCE, reason="x")
    state = evolve(state, envelope(failed, f"compute@{SOURCE}", 12))
    record = state.mine("i-1")
    assert record is not None
    assert record.migration_flow is None
    assert record.status == "running"
    # The next flow may try again.
    retry = request(flow_id="flow-2")
    state = evolve(state, retry)
    (intent,) = decide(cfg, state, retry)
    assert isinstance(intent, MigrateLive)
    assert intent.flow_id == "flow-2"


def test_the_destination_adopts_the_instance_once_the_step_completed() -> None:
    cfg = config(DESTINATION)
    state = evolve(ComputeState(DESTINATION), request())
    assert state.mine("i-1") is None
    assert FLOW in state.incoming
    # The snapshot keeps what is on its way.
    state = restore(orjson.loads(orjson.dumps(snapshot(state))))
    completed = FlowStepCompleted(step="migrate", result={})
    state = evolve(state, envelope(completed, "scheduler", 13, aggregate=FLOW))
    record = state.mine("i-1")
    assert record is not None
    assert (record.status, record.name, record.hostname) == ("running", "vm", "vm-1")
    assert not state.incoming
    # Power sync now covers it here, and a deletion destroys it here.
    gone = PowerChanged("i-1", DomainState.MISSING, None, T0 + timedelta(seconds=20))
    assert [type(p).__name__ for p in payloads(on_guest(cfg, state, gone))] == [
        "InstanceDomainLost"
    ]
    deleting = envelope(InstanceDeletionRequested(), "gateway", 30)
    state = evolve(state, deleting)
    (destroy,) = decide(cfg, state, deleting)
    assert isinstance(destroy, Destroy)
    assert destroy.host == DESTINATION


def test_a_failed_flow_leaves_nothing_to_adopt() -> None:
    state = evolve(ComputeState(DESTINATION), request())
    failed = FlowFailed(subject="i-1", reason="migration failed", compensated=("claim",))
    state = evolve(state, envelope(failed, "scheduler", 13, aggregate=FLOW))
    assert not state.incoming
    completed = FlowStepCompleted(step="migrate", result={})
    state = evolve(state, envelope(completed, "scheduler", 14, aggregate=FLOW))
    assert state.mine("i-1") is None


def test_a_restarted_destination_adopts_what_moved_in_whichever_order_it_reads_the_flow() -> None:
    """A destination agent killed mid-flow reads the scheduler's partitions in any order after
    its restart: the step's completion (keyed by the flow) may come before the request (keyed
    by the instance). The guest that moved here is adopted all the same (before the fix it
    stayed unowned: `unknown_domain_found`, and a deletion never destroyed it)."""
    completed = FlowStepCompleted(step="migrate", result={})
    state = evolve(ComputeState(DESTINATION), envelope(completed, "scheduler", 13, aggregate=FLOW))
    assert state.mine("i-1") is None
    state = restore(orjson.loads(orjson.dumps(snapshot(state))))  # the snapshot keeps it too
    state = evolve(state, request())
    record = state.mine("i-1")
    assert record is not None
    assert record.changed_at == record.usage_since == T0 + timedelta(seconds=13)
    assert not state.incoming
    assert FLOW not in state.ended


def test_a_request_read_after_its_flow_failed_is_neither_adopted_nor_carried_out() -> None:
    failed = FlowFailed(subject="i-1", reason="migration failed", compensated=("claim",))
    ended = envelope(failed, "scheduler", 13, aggregate=FLOW)
    destination = evolve(evolve(ComputeState(DESTINATION), ended), request())
    assert not destination.incoming
    assert destination.mine("i-1") is None
    asked = request()
    source = evolve(evolve(running_on(SOURCE), ended), asked)
    record = source.mine("i-1")
    assert record is not None
    assert record.migration_flow is None
    assert list(decide(config(SOURCE), source, asked)) == []


def test_the_agent_announces_where_it_receives_migrations() -> None:
    cfg = config(SOURCE, migration_uri=URI, migration_address="tcp://10.0.0.2")
    (register,) = [i for i in on_ready(cfg, ComputeState(SOURCE)) if isinstance(i, RegisterHost)]
    assert (register.migration_uri, register.migration_address) == (URI, "tcp://10.0.0.2")
    env = {"VIRGA_HOST": "h", "VIRGA_MIGRATION_URI": URI, "VIRGA_MIGRATION_TIMEOUT_SECONDS": "9"}
    read = ComputeConfig.from_env(env)
    assert (read.migration_uri, read.migration_address, read.migration_timeout_seconds) == (
        URI,
        None,
        9.0,
    )


# -- the effect, over two memory drivers ------------------------------------------------------


def effect(flow_id: str = FLOW) -> MigrateLive:
    return MigrateLive("i-1", "t-1", SOURCE, flow_id, "migrate", DESTINATION, URI, "x", 5.0)


async def two_hosts() -> tuple[MemoryComputeDriver, MemoryComputeDriver]:
    source, destination = MemoryComputeDriver(), MemoryComputeDriver()
    source.add_peer(URI, destination)
    await source.spawn(InstanceSpec(instance_id="i-1", name="vm", vcpus=1, ram_mb=256))
    return source, destination


async def test_the_effect_moves_the_guest_and_a_rerun_after_a_crash_answers_the_same() -> None:
    source, destination = await two_hosts()
    migrate = migration_handlers(source)[MigrateLive]
    (answer,) = await migrate(effect())
    assert isinstance(answer.payload, InstanceMigrated)
    assert answer.payload.destination == DESTINATION
    assert (await destination.get_info("i-1")).state is DomainState.RUNNING
    # The journal runs it again after a crash cut the answer off: gone from here, running
    # there, it is answered migrated, not failed.
    (again,) = await migrate(effect())
    assert isinstance(again.payload, InstanceMigrated)


async def test_the_effect_reports_a_failure_and_the_guest_runs_on() -> None:
    source, destination = await two_hosts()
    destination.set_available(False)
    (answer,) = await migration_handlers(source)[MigrateLive](effect())
    assert isinstance(answer.payload, InstanceMigrationFailed)
    assert "cannot reach" in answer.payload.reason
    assert (await source.get_info("i-1")).state is DomainState.RUNNING


def test_the_agent_announces_its_ceph_identity_and_the_source_hands_on_the_destinations() -> None:
    """Each host opens volumes as its own cephx user: a guest moving to a host takes that
    host's on (its secret is the only one defined there)."""
    monitors = (CephMonitor("127.0.0.1", 6789),)
    ceph = CephSettings(monitors=monitors, user="virga-compute-host-a", secret_uuid=SECRET_A)
    (register,) = [
        i for i in on_ready(config(SOURCE, ceph=ceph), ComputeState(SOURCE))
        if isinstance(i, RegisterHost)
    ]  # fmt: skip
    assert register.ceph == ("virga-compute-host-a", SECRET_A)
    no_cephx = replace(ceph, user=None, secret_uuid=None)
    (register,) = [
        i for i in on_ready(config(SOURCE, ceph=no_cephx), ComputeState(SOURCE))
        if isinstance(i, RegisterHost)
    ]  # fmt: skip
    assert register.ceph is None

    state = running_on(SOURCE)
    payload = replace(
        request().payload,
        destination_ceph_user="virga-compute-host-b",
        destination_ceph_secret_uuid=SECRET_B,
    )
    asked = envelope(payload, "scheduler", 10)
    (intent,) = decide(config(SOURCE), evolve(state, asked), asked)
    assert isinstance(intent, MigrateLive)
    assert intent.destination_ceph == ("virga-compute-host-b", SECRET_B)
    # A destination that announced none (an agent before v4): its disks as here.
    asked = request()
    (intent,) = decide(config(SOURCE), evolve(running_on(SOURCE), asked), asked)
    assert isinstance(intent, MigrateLive)
    assert intent.destination_ceph is None


def test_a_host_registered_before_ceph_identities_reads_as_announcing_none() -> None:
    event = HostRegistered(
        rack="r", zone="z", vcpus=1, ram_mb=1, disk_gb=1, ceph_user="u", ceph_secret_uuid=SECRET_A
    )
    wire = orjson.loads(encode(new_event(event, aggregate_id=SOURCE, tenant_id=None, producer="c")))
    assert wire["version"] == 4
    del wire["payload"]["ceph_user"], wire["payload"]["ceph_secret_uuid"]
    wire["version"] = 3
    old = decode(orjson.dumps(wire), REGISTRY)
    assert isinstance(old.payload, HostRegistered)
    assert (old.payload.ceph_user, old.payload.ceph_secret_uuid) == (None, None)
