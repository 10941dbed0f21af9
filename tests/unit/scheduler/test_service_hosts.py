"""Host liveness and administration as the scheduler service tracks them."""

from __future__ import annotations

from tests.unit.scheduler.service_support import (
    Scheduler,
    event,
    heartbeat,
    only,
    registered,
    requested,
    scheduled_hosts,
)

from virga_events.catalog.api import HostDisabled
from virga_events.catalog.scheduler import HostMarkedDown, HostMarkedUp, InstanceSchedulingFailed
from virga_scheduler.config import SchedulerConfig

CONFIG = SchedulerConfig(heartbeat_timeout_seconds=30)


def two_hosts() -> Scheduler:
    scheduler = Scheduler(CONFIG)
    scheduler.feed(registered("h1", seconds=0), registered("h2", seconds=0))
    return scheduler


def test_a_host_that_stops_beating_is_marked_down_once_and_gets_nothing_new() -> None:
    scheduler = two_hosts()
    scheduler.feed(heartbeat("h1", 20), heartbeat("h2", 20))
    assert scheduler.tick(45) == []  # 25 s since the last beat: within the timeout
    scheduler.feed(heartbeat("h2", 40))
    down = only(scheduler.tick(51), HostMarkedDown)  # h1 silent for 31 s, h2 for 11 s
    assert down.last_heartbeat_at == scheduler.state.last_seen["h1"]
    assert scheduler.state.down.keys() == {"h1"}
    assert scheduler.tick(60) == []  # said once
    emitted = scheduler.feed(*(requested(f"i{n}") for n in range(3)))
    assert set(scheduled_hosts(emitted)) == {"h2"}


def test_a_down_host_that_beats_again_is_marked_up_and_takes_instances_again() -> None:
    scheduler = two_hosts()
    scheduler.tick(31)  # both silent since 0
    refused = only(scheduler.feed(requested("i1")), InstanceSchedulingFailed)
    assert refused.reason == "no host fits: 2 hosts down"
    assert only(scheduler.feed(heartbeat("h2", 32)), HostMarkedUp)
    assert scheduler.feed(heartbeat("h2", 33)) == []  # already up
    assert scheduled_hosts(scheduler.feed(requested("i2"))) == ["h2"]
    assert scheduler.state.down.keys() == {"h1"}


def test_a_late_heartbeat_older_than_the_one_it_was_marked_down_after_does_not_bring_it_up() -> (
    None
):
    scheduler = two_hosts()
    scheduler.feed(heartbeat("h1", 10))
    scheduler.tick(41)
    assert scheduler.state.down["h1"] == scheduler.state.last_seen["h1"]
    assert scheduler.feed(heartbeat("h1", 5)) == []  # delayed in transit, not news
    assert "h1" in scheduler.state.down


def test_an_agent_registering_again_counts_as_alive() -> None:
    scheduler = two_hosts()
    scheduler.tick(31)
    assert only(scheduler.feed(registered("h1", seconds=35)), HostMarkedUp)


def test_heartbeats_do_not_rebuild_the_placement_view() -> None:
    scheduler = two_hosts()
    scheduler.feed(requested("i1"))
    view = scheduler.state.view_cache
    assert view is not None
    scheduler.feed(*(heartbeat(h, n) for n in range(1, 50) for h in ("h1", "h2")))
    assert scheduler.state.view_cache is view


def test_an_admin_disabling_a_host_before_its_agent_registers_still_counts() -> None:
    # The two events are on different topics; a rebuild may fold them in either order.
    scheduler = Scheduler(CONFIG)
    scheduler.feed(event(HostDisabled(reason="burn-in"), "h9"), registered("h9"))
    refused = only(scheduler.feed(requested("i1")), InstanceSchedulingFailed)
    assert refused.reason == "no host fits: 1 host disabled"
