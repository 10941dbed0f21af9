"""The compute agent's pure core: evolve, decide, tick and on_ready, without Kafka or libvirt."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from virga_compute.config import ComputeConfig
from virga_compute.core import fold as core_fold
from virga_compute.core.decide import decide, on_ready, tick
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.reconcile import Expected
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import InstanceSpec
from virga_compute.effects.intents import (
    Destroy,
    PowerAction,
    Reconcile,
    RegisterHost,
    SampleUsage,
    Spawn,
    UsageDue,
)
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.compute import (
    HostHeartbeat,
    InstanceDeleted,
    InstanceDomainLost,
    InstanceFailed,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime import Emit, Intent

HOST = "host-1"
ME = f"compute@{HOST}"
CONFIG = ComputeConfig(
    host=HOST, rack="r1", zone="z1", traits=("ssd",), heartbeat_seconds=10, usage_seconds=60
)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = Flavor(name="m1.small", vcpus=2, ram_mb=512, disk_gb=10)


def scheduled(instance_id: str = "i-1", host: str = HOST, attempt: int = 1) -> Envelope:
    event = InstanceScheduled(
        host=host, rack="r1", zone="z1", attempt=attempt, name=f"vm {instance_id}", flavor=SMALL
    )
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="scheduler")


def action(name: str, instance_id: str = "i-1") -> Envelope:
    event = InstanceActionRequested(action=name)  # type: ignore[arg-type]
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="gateway")


def deletion(instance_id: str = "i-1") -> Envelope:
    event = InstanceDeletionRequested()
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="gateway")


def reported(
    event: Event,
    instance_id: str = "i-1",
    cause: Envelope | None = None,
    producer: str = ME,
    at: datetime = T0,
) -> Envelope:
    """An event on the compute topic, by this agent unless `producer` says otherwise."""
    return new_event(
        event,
        aggregate_id=instance_id,
        tenant_id="t-1",
        producer=producer,
        causation=cause,
        correlation_id="c",
        occurred_at=at,
    )


def fold(state: ComputeState, *envelopes: Envelope) -> ComputeState:
    for envelope in envelopes:
        state = evolve(state, envelope)
    return state


def live(state: ComputeState, envelope: Envelope) -> Sequence[Intent]:
    """What the runtime does with a new input: fold it, then decide."""
    return decide(CONFIG, evolve(state, envelope), envelope)


def fresh() -> ComputeState:
    return ComputeState(host=HOST)


def spec(instance_id: str = "i-1") -> InstanceSpec:
    return InstanceSpec(instance_id=instance_id, name=f"vm {instance_id}", vcpus=2, ram_mb=512)


# -- placement ---------------------------------------------------------------------------


def test_a_placement_on_this_host_spawns_the_instance_with_its_flavor() -> None:
    state = fresh()
    assert live(state, scheduled()) == [Spawn(spec(), "t-1", HOST)]
    assert state.instances["i-1"].status == "building"


def test_a_placement_on_another_host_is_ignored() -> None:
    state = fresh()
    assert live(state, scheduled(host="host-2")) == ()
    assert state.instances == {}


def test_a_duplicate_placement_never_makes_a_second_domain() -> None:
    state = fresh()
    first = scheduled()
    assert live(state, first) != ()
    # A duplicate (new event id) in the same batch, before the spawn's outcome...
    assert live(state, scheduled()) == ()
    fold(state, reported(InstanceStarted(host=HOST), cause=first))
    # ...and after it.
    assert live(state, scheduled()) == ()
    assert state.instances["i-1"].status == "running"


def test_after_a_failed_spawn_the_instance_is_no_longer_this_hosts() -> None:
    state = fresh()
    first = scheduled()
    live(state, first)
    fold(state, reported(InstanceFailed(host=HOST, phase="spawn", reason="boom"), cause=first))
    assert state.instances == {}
    assert live(state, action("stop")) == ()
    assert state.running() == 0
    # A later attempt placed here again is a new placement.
    assert live(state, scheduled(attempt=2)) == [Spawn(spec(), "t-1", HOST)]


def test_a_later_placement_elsewhere_takes_the_instance_away() -> None:
    state = fold(fresh(), scheduled(attempt=1), scheduled(host="host-2", attempt=2))
    assert state.instances == {}


# -- deletion, and the race with placement ----------------------------------------------------


def test_deleting_a_known_instance_destroys_it_once() -> None:
    state = fresh()
    placed = scheduled()
    live(state, placed)
    fold(state, reported(InstanceStarted(host=HOST), cause=placed))
    assert live(state, deletion()) == [Destroy("i-1", "t-1", HOST)]
    assert live(state, deletion()) == ()  # a repeated request while the first runs
    assert live(state, action("start")) == ()  # on its way out
    fold(state, reported(InstanceDeleted(host=HOST)))
    assert state.instances == {}
    assert "i-1" in state.deleted


def test_a_failed_deletion_can_be_asked_again() -> None:
    state = fold(fresh(), scheduled())
    first = deletion()
    assert live(state, first) == [Destroy("i-1", "t-1", HOST)]
    fold(state, reported(InstanceFailed(host=HOST, phase="delete", reason="busy"), cause=first))
    assert live(state, deletion()) == [Destroy("i-1", "t-1", HOST)]


def test_a_deletion_that_overtakes_the_placement_means_it_is_never_spawned() -> None:
    state = fresh()
    assert live(state, deletion()) == ()  # not ours (yet): remembered
    assert "i-1" in state.pending_deletions
    intents = live(state, scheduled())
    assert intents == [Emit(InstanceDeleted(host=HOST), "i-1", "t-1")]
    fold(state, reported(InstanceDeleted(host=HOST)))
    assert state.pending_deletions == {}
    assert state.instances == {}
    # A late duplicate of the placement still never spawns.
    assert live(state, scheduled()) == [Emit(InstanceDeleted(host=HOST), "i-1", "t-1")]


@pytest.mark.parametrize(("producer", "host"), [("compute@host-2", "host-2"), ("scheduler", None)])
def test_a_pending_deletion_is_purged_when_anyone_deletes_the_instance(
    producer: str, host: str | None
) -> None:
    state = fold(fresh(), deletion())
    fold(state, reported(InstanceDeleted(host=host), producer=producer))
    assert state.pending_deletions == {}
    assert "i-1" in state.deleted


def test_a_deletion_waiting_on_a_spawn_that_fails_stays_pending() -> None:
    state = fresh()
    placed = scheduled()
    live(state, placed)
    live(state, deletion())
    fold(state, reported(InstanceFailed(host=HOST, phase="spawn", reason="x"), cause=placed))
    assert "i-1" in state.pending_deletions


def test_tombstones_are_bounded_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_fold, "TOMBSTONE_LIMIT", 3)
    state = fold(fresh(), *(deletion(f"i-{n}") for n in range(5)))
    assert list(state.pending_deletions) == ["i-2", "i-3", "i-4"]
    fold(state, *(reported(InstanceDeleted(host=None), f"i-{n}", producer="s") for n in range(5)))
    assert list(state.deleted) == ["i-2", "i-3", "i-4"]
    assert state.pending_deletions == {}


# -- power actions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["start", "stop", "reboot"])
def test_actions_on_this_hosts_instances_go_to_the_driver(name: str) -> None:
    state = fold(fresh(), scheduled())  # even before the spawn's outcome is known
    assert live(state, action(name)) == [PowerAction("i-1", "t-1", HOST, name)]  # type: ignore[arg-type]
    assert live(state, action(name, "i-elsewhere")) == ()


def test_status_follows_this_agents_reports_only() -> None:
    state = fold(fresh(), scheduled())
    steps: list[tuple[Event, str]] = [
        (InstanceStarted(host=HOST), "running"),
        (InstanceStopped(host=HOST), "stopped"),
        (InstanceRebooted(host=HOST), "running"),
        (InstanceFailed(host=HOST, phase="stop", reason="x"), "running"),
        (InstanceStopped(host="host-2"), "running"),  # a peer's claim changes nothing here
    ]
    for event, status in steps:
        fold(state, reported(event))
        assert state.instances["i-1"].status == status


def test_starting_an_instance_whose_domain_was_lost_spawns_it_again() -> None:
    state = fold(fresh(), scheduled(), reported(InstanceDomainLost(host=HOST)))
    assert state.running() == 0
    assert live(state, action("start")) == [Spawn(spec(), "t-1", HOST, phase="start")]


# -- rebuild equals live ------------------------------------------------------------------------


def _history() -> tuple[list[Envelope], list[Envelope], list[Envelope]]:
    """A live history: (scheduler inputs, api inputs, everything in the order it happened)."""
    s1, s2, s3, s4 = scheduled("i-1"), scheduled("i-2"), scheduled("i-3"), scheduled("i-4")
    stop1, start1, d2, d3, d4a, d4b = (
        action("stop", "i-1"),
        action("start", "i-1"),
        deletion("i-2"),
        deletion("i-3"),
        deletion("i-4"),
        deletion("i-4"),
    )
    at = [T0 + timedelta(seconds=n) for n in range(20)]
    happened = [
        s1,
        reported(InstanceStarted(host=HOST), "i-1", s1, at=at[1]),
        stop1,
        reported(InstanceStopped(host=HOST), "i-1", stop1, at=at[2]),
        start1,
        reported(InstanceStarted(host=HOST), "i-1", start1, at=at[3]),
        d2,  # before its placement
        s2,
        reported(InstanceDeleted(host=HOST), "i-2", s2, at=at[4]),
        s3,
        reported(InstanceFailed(host=HOST, phase="spawn", reason="x"), "i-3", s3, at=at[5]),
        d3,  # by now another host's
        s4,
        reported(InstanceStarted(host=HOST), "i-4", s4, at=at[6]),
        d4a,
        reported(InstanceFailed(host=HOST, phase="delete", reason="x"), "i-4", d4a, at=at[7]),
        d4b,
        reported(InstanceDeleted(host=HOST), "i-4", d4b, at=at[8]),
        reported(_usage(), "i-1", at=at[9]),
        reported(HostHeartbeat(running=1), HOST, at=at[10]),
    ]
    return [s1, s2, s3, s4], [stop1, start1, d2, d3, d4a, d4b], happened


def _interleave(a: list[Envelope], b: list[Envelope], rng: random.Random) -> list[Envelope]:
    a, b, out = list(a), list(b), []
    while a or b:
        source = a if b == [] or (a and rng.random() < 0.5) else b
        out.append(source.pop(0))
    return out


@pytest.mark.parametrize("seed", range(8))
def test_a_rebuild_reading_inputs_then_outcomes_ends_in_the_live_state(seed: int) -> None:
    """Rebuild folds every decided input (api and scheduler in any interleaving) before the
    agent's own outcomes: the state must still be the one the live agent had."""
    placements, requests, happened = _history()
    inputs = {id(e) for e in placements + requests}
    live_state = fold(fresh(), *happened)
    order = _interleave(placements, requests, random.Random(seed))
    rebuilt = fold(fresh(), *order, *(e for e in happened if id(e) not in inputs))
    assert rebuilt == live_state
    assert set(live_state.instances) == {"i-1"}
    assert live_state.instances["i-1"].status == "running"
    assert live_state.instances["i-1"].usage_since == T0 + timedelta(seconds=9)
    assert set(live_state.deleted) == {"i-2", "i-4"}
    assert set(live_state.pending_deletions) == {"i-3"}  # until its new host deletes it


def test_the_state_survives_a_json_snapshot() -> None:
    state = fold(fresh(), *_history()[2])
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state


# -- time ---------------------------------------------------------------------------------------


def test_a_heartbeat_goes_out_once_per_interval_with_the_running_count() -> None:
    placed = scheduled()
    state = fold(fresh(), placed, reported(InstanceStarted(host=HOST), cause=placed))
    beat = Emit(HostHeartbeat(running=1), HOST, None)
    assert beat in tick(CONFIG, state, T0)
    fold(state, reported(HostHeartbeat(running=1), HOST, at=T0))
    assert not any(isinstance(i, Emit) for i in tick(CONFIG, state, T0 + timedelta(seconds=4)))
    # A tick a little early (the event's time is taken after the tick's) still beats.
    assert beat in tick(CONFIG, state, T0 + timedelta(seconds=9.9))


def test_usage_is_sampled_once_per_usage_interval_not_per_tick() -> None:
    placed = scheduled()
    state = fold(fresh(), placed, reported(InstanceStarted(host=HOST), cause=placed, at=T0))
    now = T0 + timedelta(seconds=10)
    assert SampleUsage(HOST, now, (UsageDue("i-1", "t-1", T0),)) in tick(CONFIG, state, now)
    fold(state, reported(_usage(), at=now))
    for seconds in range(20, 70, 10):  # five ticks inside the interval
        later = T0 + timedelta(seconds=seconds)
        assert not any(isinstance(i, SampleUsage) for i in tick(CONFIG, state, later))
    due = T0 + timedelta(seconds=70)
    assert SampleUsage(HOST, due, (UsageDue("i-1", "t-1", now),)) in tick(CONFIG, state, due)


def test_nothing_is_sampled_without_running_instances() -> None:
    placed = scheduled()
    state = fold(fresh(), placed, reported(InstanceStarted(host=HOST), cause=placed))
    fold(state, reported(InstanceStopped(host=HOST)))
    assert tick(CONFIG, state, T0) == [Emit(HostHeartbeat(running=0), HOST, None)]


def _usage() -> UsageSampled:
    return UsageSampled(
        host=HOST,
        period_seconds=10,
        cpu_time_ns=5,
        memory_kb=512 * 1024,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=0,
    )


# -- start-up ----------------------------------------------------------------------------------


def test_on_ready_leaves_an_instance_with_a_power_request_under_way_to_that_request() -> None:
    """An agent killed mid-stop resumes the stop from its journal; reconciled as well, the
    guest that stop had just forced off was recorded stopped a second time (CI saw two
    InstanceStopped), so the reconciliation leaves it alone, as the power watch does."""
    s1 = scheduled("i-1")
    state = fold(fresh(), s1, reported(InstanceStarted(host=HOST), "i-1", s1), action("stop"))
    [_, reconcile] = on_ready(CONFIG, state)
    assert isinstance(reconcile, Reconcile)
    assert reconcile.expected == ()
    assert reconcile.leave_alone == ("i-1",)


def test_on_ready_registers_the_host_then_reconciles_what_the_log_places_here() -> None:
    s1, s2, s3 = scheduled("i-1"), scheduled("i-2"), scheduled("i-3")
    state = fold(
        fresh(),
        s1,
        s2,
        s3,
        reported(InstanceStarted(host=HOST), "i-1", s1),
        reported(InstanceStopped(host=HOST), "i-2", s2),
        reported(InstanceDomainLost(host=HOST), "i-3", s3),
        scheduled("i-9", host="host-2"),
    )
    assert on_ready(CONFIG, state) == [
        RegisterHost(HOST, "r1", "z1", ("ssd",)),
        Reconcile(
            HOST,
            "restart",
            (
                Expected(spec("i-1"), "t-1", should_run=True, lost=False),
                Expected(spec("i-2"), "t-1", should_run=False, lost=False),
                Expected(spec("i-3"), "t-1", should_run=True, lost=True),
            ),
        ),
    ]
