"""Failed spawns, reschedules and deletions as the scheduler service decides them."""

from __future__ import annotations

from tests.unit.scheduler.service_support import (
    Scheduler,
    deleted,
    deletion_requested,
    failed,
    group_created,
    only,
    registered,
    requested,
    scheduled_hosts,
)

from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.scheduler import (
    ClaimReleased,
    InstanceScheduled,
    InstanceSchedulingFailed,
)
from virga_scheduler.config import SchedulerConfig


def fleet(*names: str, config: SchedulerConfig | None = None) -> Scheduler:
    scheduler = Scheduler(config or SchedulerConfig())
    for n, name in enumerate(names):
        # Decreasing sizes make spread's choice predictable: h1 first, then h2...
        scheduler.feed(registered(name, ram_mb=16384 - 1024 * n))
    return scheduler


def test_a_failed_spawn_releases_the_claim_and_reschedules_elsewhere_as_attempt_two() -> None:
    scheduler = fleet("h1", "h2", "h3")
    assert scheduled_hosts(scheduler.feed(requested("i1"))) == ["h1"]
    emitted = scheduler.feed(failed("i1", "h1", reason="image not found"))
    released = only(emitted, ClaimReleased)
    assert (released.host, released.reason) == ("h1", "spawn failed: image not found")
    again = only(emitted, InstanceScheduled)
    assert (again.host, again.attempt) == ("h2", 2)
    assert scheduler.host_of("i1") == "h2"
    assert scheduler.state.claims.usage_of("h1").vcpus == 0


def test_a_reschedule_never_goes_back_to_any_host_that_failed_it() -> None:
    # h1 is by far the emptiest, so spread would pick it again if it were allowed.
    scheduler = fleet("h1", "h2", "h3")
    scheduler.feed(requested("i1"), failed("i1", "h1"))
    emitted = scheduler.feed(failed("i1", "h2"))
    assert only(emitted, InstanceScheduled).host == "h3"
    assert only(emitted, InstanceScheduled).attempt == 3


def test_after_max_attempts_the_instance_fails_naming_every_host_and_the_last_reason() -> None:
    scheduler = fleet("h1", "h2", "h3", "h4")
    scheduler.feed(requested("i1"), failed("i1", "h1"), failed("i1", "h2"))
    emitted = scheduler.feed(failed("i1", "h3", reason="libvirt: no space left"))
    assert only(emitted, ClaimReleased).host == "h3"
    refused = only(emitted, InstanceSchedulingFailed)
    assert refused.reason == "failed on hosts h1, h2, h3: libvirt: no space left"
    assert refused.attempts == 3
    assert "i1" not in scheduler.state.claims  # h4 had room, but three attempts is the limit


def test_a_reschedule_with_no_host_left_says_where_it_failed_and_why_nothing_else_fits() -> None:
    scheduler = fleet("h1", "h2")
    scheduler.feed(requested("i1"), failed("i1", "h1"))
    refused = only(scheduler.feed(failed("i1", "h2", reason="boom")), InstanceSchedulingFailed)
    assert refused.reason == (
        "failed on hosts h1, h2: boom; then no host fits: 2 hosts that already failed this instance"
    )
    assert refused.attempts == 3


def test_failures_of_start_stop_or_reboot_do_not_move_the_instance() -> None:
    scheduler = fleet("h1", "h2")
    scheduler.feed(requested("i1"))
    for phase in ("start", "stop", "reboot"):
        assert scheduler.feed(failed("i1", "h1", phase=phase)) == []
    assert scheduler.host_of("i1") == "h1"


def test_a_stale_spawn_failure_from_a_host_it_already_left_changes_nothing() -> None:
    scheduler = fleet("h1", "h2", "h3")
    scheduler.feed(requested("i1"), failed("i1", "h1"))
    assert scheduler.feed(failed("i1", "h1")) == []
    assert scheduler.host_of("i1") == "h2"


def test_a_spawn_failure_after_deletion_was_requested_only_releases_and_ends_the_instance() -> None:
    scheduler = fleet("h1", "h2")
    scheduler.feed(requested("i1"))
    assert scheduler.feed(deletion_requested("i1")) == []  # placed: its agent deletes it
    emitted = scheduler.feed(failed("i1", "h1"))
    assert [type(e) for e in emitted] == [ClaimReleased, InstanceDeleted]
    assert only(emitted, InstanceDeleted).host is None
    assert "i1" not in scheduler.state.instances


def test_deleting_a_pending_or_refused_instance_is_done_by_the_scheduler() -> None:
    scheduler = fleet("h1")
    scheduler.feed(requested("held", group="later"))  # waits for its server group
    gone = only(scheduler.feed(deletion_requested("held")), InstanceDeleted)
    assert gone.host is None
    assert scheduled_hosts(scheduler.feed(group_created("later"))) == []

    tiny = fleet()  # no hosts at all: the request is refused
    tiny.feed(requested("refused"))
    assert only(tiny.feed(deletion_requested("refused")), InstanceDeleted).host is None
    assert tiny.feed(deletion_requested("refused")) == []  # once
    assert tiny.state.instances == {}


def test_deleting_a_placed_instance_waits_for_its_agent_then_frees_the_claim() -> None:
    scheduler = fleet("h1")
    scheduler.feed(requested("i1"))
    assert scheduler.feed(deletion_requested("i1")) == []
    assert scheduler.host_of("i1") == "h1"
    released = only(scheduler.feed(deleted("i1", "h1")), ClaimReleased)
    assert (released.host, released.reason) == ("h1", "instance deleted")
    assert scheduler.state.claims.usage_of("h1").vcpus == 0
    assert "i1" not in scheduler.state.instances
    assert scheduler.feed(deleted("i1", "h1")) == []  # a repeated report frees nothing twice
    assert scheduler.feed(requested("i1")) == []  # a late duplicate request does not revive it


def test_a_deleted_member_no_longer_keeps_others_out_of_its_rack() -> None:
    scheduler = fleet("h1", "h2")
    scheduler.feed(group_created("g", "anti-affinity", "host"))
    scheduler.feed(requested("a", group="g"), requested("b", group="g"))
    assert only(scheduler.feed(requested("c", group="g")), InstanceSchedulingFailed)
    scheduler.feed(deletion_requested("a"), deleted("a", "h1"))
    assert scheduler.state.groups["g"].members == {"b"}
    assert scheduled_hosts(scheduler.feed(requested("d", group="g"))) == ["h1"]


def test_a_failed_boot_volume_or_port_ends_the_instance_in_error_without_a_reschedule() -> None:
    for phase in ("volume", "port"):
        scheduler = fleet("h1", "h2")
        assert scheduled_hosts(scheduler.feed(requested("i1"))) == ["h1"]
        emitted = scheduler.feed(failed("i1", "h1", phase=phase, reason=f"{phase} said no"))
        assert only(emitted, ClaimReleased).reason == f"{phase} failed: {phase} said no"
        assert scheduled_hosts(emitted) == []
        refused = only(emitted, InstanceSchedulingFailed)
        assert (refused.reason, refused.attempts) == (f"{phase} said no", 1)
        assert scheduler.host_of("i1") is None
        assert scheduler.state.claims.usage_of("h1").vcpus == 0
        # Deleting it now needs no agent: the scheduler ends it.
        assert [type(e) for e in scheduler.feed(deletion_requested("i1"))] == [InstanceDeleted]


def test_a_final_failure_after_deletion_was_requested_releases_and_deletes() -> None:
    scheduler = fleet("h1")
    scheduler.feed(requested("i1"), deletion_requested("i1"))
    emitted = scheduler.feed(failed("i1", "h1", phase="volume"))
    assert [type(e) for e in emitted] == [ClaimReleased, InstanceDeleted]
