"""Guests that change power state without Virga asking (`core.power`): what is recorded, what
the restart policy makes happen, and that Virga's own actions are never recorded twice."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.unit.compute.test_agent_core import (
    CONFIG,
    HOST,
    SMALL,
    T0,
    action,
    deletion,
    fold,
    fresh,
    reported,
    spec,
)

from virga_compute.core.model import ComputeState
from virga_compute.core.power import PowerChanged, PowerSynced, on_guest
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import DomainInfo, DomainState
from virga_compute.effects.intents import Restart
from virga_events import Envelope, new_event
from virga_events.catalog.api import InstanceActionRequested, InstanceRestartPolicy
from virga_events.catalog.compute import (
    InstanceDomainLost,
    InstanceFailed,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    StopCause,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime import Emit

AT = T0 + timedelta(minutes=5)


def placed(policy: InstanceRestartPolicy = "never", instance_id: str = "i-1") -> Envelope:
    event = InstanceScheduled(
        host=HOST,
        rack="r1",
        zone="z1",
        attempt=1,
        name=f"vm {instance_id}",
        flavor=SMALL,
        restart_policy=policy,
    )
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="scheduler")


def running(policy: InstanceRestartPolicy = "never") -> ComputeState:
    return fold(fresh(), placed(policy), reported(InstanceStarted(host=HOST)))


def off(cause: StopCause | None, state: DomainState = DomainState.SHUTOFF) -> PowerChanged:
    return PowerChanged("i-1", state, cause, AT)


def stopped(cause: StopCause) -> Emit:
    return Emit(InstanceStopped(host=HOST, cause=cause), "i-1", "t-1", AT)


@pytest.mark.parametrize("cause", ["shutdown", "destroyed", "crashed"])
def test_a_guest_off_without_virga_asking_is_stopped_at_the_moment_it_was_seen(
    cause: StopCause,
) -> None:
    assert on_guest(CONFIG, running(), off(cause)) == [stopped(cause)]


def test_a_crashed_domain_without_a_reason_counts_as_crashed() -> None:
    signal = off(None, DomainState.CRASHED)
    assert on_guest(CONFIG, running(), signal) == [stopped("crashed")]


@pytest.mark.parametrize(
    ("policy", "cause", "restarts"),
    [
        ("never", "crashed", False),
        ("on-crash", "crashed", True),
        ("on-crash", "shutdown", False),
        ("on-crash", "destroyed", False),
        ("always", "shutdown", True),
        ("always", "destroyed", True),
        ("always", "crashed", True),
    ],
)
def test_the_restart_policy_decides_what_follows(
    policy: InstanceRestartPolicy, cause: StopCause, restarts: bool
) -> None:
    intents = on_guest(CONFIG, running(policy), off(cause))
    restart = Restart(spec(), "t-1", HOST, cause, policy)
    assert intents == ([stopped(cause), restart] if restarts else [stopped(cause)])


def test_an_instance_being_restarted_is_left_alone_until_the_restart_is_recorded() -> None:
    state = running("on-crash")
    state = fold(state, reported(InstanceStopped(host=HOST, cause="crashed"), at=AT))
    assert state.instances["i-1"].restarting
    # Libvirt reports the restart's own start, and a sync may still see it off: no record.
    assert on_guest(CONFIG, state, PowerChanged("i-1", DomainState.RUNNING, None, AT)) == ()
    assert on_guest(CONFIG, state, off("crashed")) == ()
    policy: InstanceRestartPolicy = "on-crash"
    state = fold(state, reported(InstanceRestarted(host=HOST, cause="crashed", policy=policy)))
    record = state.instances["i-1"]
    assert (record.status, record.restarting) == ("running", False)


def test_a_failed_restart_leaves_it_stopped_and_watched_again() -> None:
    state = running("always")
    state = fold(state, reported(InstanceStopped(host=HOST, cause="shutdown")))
    state = fold(state, reported(InstanceFailed(host=HOST, phase="restart", reason="no")))
    record = state.instances["i-1"]
    assert (record.status, record.restarting) == ("stopped", False)


def test_a_stop_virga_asked_for_is_never_recorded_twice() -> None:
    request = action("stop")
    state = fold(running("always"), request)
    assert state.instances["i-1"].actions == {request.event_id: "stop"}
    # The guest obeys ACPI (libvirt says `shutdown`), or is forced off after the grace period.
    assert on_guest(CONFIG, state, off("shutdown")) == ()
    assert on_guest(CONFIG, state, off("destroyed")) == ()
    state = fold(state, reported(InstanceStopped(host=HOST), cause=request))
    record = state.instances["i-1"]
    assert (record.actions, record.restarting) == ({}, False)  # `requested`: no restart
    assert on_guest(CONFIG, state, off("shutdown")) == ()  # a late event: already stopped


def test_a_reboot_in_flight_hides_the_domain_going_off_and_on() -> None:
    request = action("reboot")
    state = fold(running(), request)
    assert on_guest(CONFIG, state, off("destroyed")) == ()
    state = fold(state, reported(InstanceStarted(host=HOST), cause=request))
    assert state.instances["i-1"].actions == {}


def test_building_and_deleted_instances_are_left_alone() -> None:
    building = fold(fresh(), placed())
    assert on_guest(CONFIG, building, off("crashed")) == ()
    deleting = fold(running(), deletion())
    assert on_guest(CONFIG, deleting, off("destroyed")) == ()
    assert on_guest(CONFIG, running(), PowerChanged("i-other", DomainState.SHUTOFF, None, AT)) == ()


def test_a_guest_started_by_hand_is_recorded_running() -> None:
    state = fold(running(), reported(InstanceStopped(host=HOST)))
    seen = PowerChanged("i-1", DomainState.RUNNING, None, AT)
    assert on_guest(CONFIG, state, seen) == [Emit(InstanceStarted(host=HOST), "i-1", "t-1", AT)]


def test_a_sync_finds_stops_and_lost_domains_and_agrees_with_the_rest() -> None:
    state = fold(
        running(),
        placed(instance_id="i-2"),
        reported(InstanceStarted(host=HOST), "i-2"),
        placed(instance_id="i-3"),
        reported(InstanceStarted(host=HOST), "i-3"),
    )
    found = (
        DomainInfo("i-1", DomainState.SHUTOFF, "shutdown"),
        DomainInfo("i-3", DomainState.RUNNING),
    )
    assert on_guest(CONFIG, state, PowerSynced(found, AT)) == [
        stopped("shutdown"),
        Emit(InstanceDomainLost(host=HOST), "i-2", "t-1", AT),
    ]
    state = fold(state, reported(InstanceStopped(host=HOST, cause="shutdown"), at=AT))
    state = fold(state, reported(InstanceDomainLost(host=HOST), "i-2", at=AT))
    assert on_guest(CONFIG, state, PowerSynced(found, AT)) == []  # nothing new


def test_the_restart_policy_and_pending_actions_survive_a_snapshot() -> None:
    state = fold(running("on-crash"), action("stop"))
    state = fold(state, reported(InstanceStopped(host=HOST, cause="crashed")))
    assert restore(snapshot(state)) == state


def request(name: str, at: datetime) -> Envelope:
    event = InstanceActionRequested(action=name)  # type: ignore[arg-type]
    return new_event(event, aggregate_id="i-1", tenant_id="t-1", producer="gateway", occurred_at=at)


def test_a_stop_read_before_its_placement_in_a_rebuild_still_awaits_its_outcome() -> None:
    """A rebuild reads the gateway's and the scheduler's topics side by side: a stop request
    may be folded before the placement it followed. The stop is still Virga's own, so the
    domain going off under it is not recorded a second time as `destroyed`."""
    first = placed()
    stop = request("stop", first.occurred_at + timedelta(seconds=30))
    state = fold(fresh(), stop, first, reported(InstanceStarted(host=HOST)))
    assert list(state.instances["i-1"].actions) == [stop.event_id]
    assert not on_guest(CONFIG, state, off("destroyed"))
    assert restore(snapshot(fold(fresh(), stop))) == fold(fresh(), stop)
    # Its outcome answers it as it would live.
    state = fold(state, reported(InstanceStopped(host=HOST, cause="requested"), cause=stop))
    assert state.instances["i-1"].actions == {}


def test_a_request_made_before_the_placement_is_not_carried_over() -> None:
    """A request about an earlier life of the instance (elsewhere) waits for no outcome here."""
    first = placed()
    stale = request("stop", first.occurred_at - timedelta(seconds=30))
    state = fold(fresh(), stale, first)
    assert state.instances["i-1"].actions == {}
    assert state.pending_actions == {}
