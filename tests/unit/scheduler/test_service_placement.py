"""The scheduler service places requests: claims, capacity, refusals, server groups, policy."""

from __future__ import annotations

import dataclasses
from collections import Counter

import structlog.testing
from tests.unit.scheduler.service_support import (
    SMALL,
    TENANT,
    Scheduler,
    event,
    group_created,
    only,
    refusals,
    registered,
    requested,
    scheduled_hosts,
)

from virga_events.catalog import Flavor
from virga_events.catalog.api import AllocationRatiosSet, HostDisabled, HostEnabled
from virga_events.catalog.scheduler import InstanceScheduled, InstanceSchedulingFailed
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.placement import Weigher


def fleet(scheduler: Scheduler, *names: str, racks: int = 1, **size: int) -> None:
    for n, name in enumerate(names):
        scheduler.feed(registered(name, rack=f"r{n % racks + 1}", **size))  # type: ignore[arg-type]


def test_a_request_is_scheduled_with_what_the_agent_needs_and_the_claim_is_held() -> None:
    scheduler = Scheduler()
    scheduler.feed(registered("h1", rack="r7", zone="az2"))
    placed = only(scheduler.feed(requested("i1")), InstanceScheduled)
    assert (placed.host, placed.rack, placed.zone, placed.attempt) == ("h1", "r7", "az2", 1)
    assert (placed.name, placed.flavor, placed.image, placed.network) == (
        "vm-i1",
        SMALL,
        "debian-12",
        "net-1",
    )
    claim = scheduler.state.claims.get("i1")
    assert claim is not None
    assert (claim.host, claim.vcpus, claim.ram_mb, claim.disk_gb) == ("h1", 2, 2048, 20)


def test_the_guests_own_data_goes_with_the_placement_to_its_agent() -> None:
    scheduler = Scheduler()
    scheduler.feed(registered("h1"))
    asked = requested("i1")
    payload = dataclasses.replace(
        asked.payload,
        hostname="vm-i1",
        key_name="laptop",
        public_keys=("ssh-ed25519 AAAA me@host",),
        user_data="IyEvYmluL3NoCg==",
        config_drive=True,
    )
    placed = only(
        scheduler.feed(event(payload, "i1", TENANT, producer="gateway")), InstanceScheduled
    )
    assert (placed.hostname, placed.key_name, placed.public_keys) == (
        "vm-i1",
        "laptop",
        ("ssh-ed25519 AAAA me@host",),
    )
    assert (placed.user_data, placed.config_drive) == ("IyEvYmluL3NoCg==", True)
    assert only(scheduler.feed(requested("i2")), InstanceScheduled).config_drive is False


def test_requests_never_double_book_a_host() -> None:
    # 3 hosts with room for 4 small instances each (RAM: 8192 / 2048); 15 requests.
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2", "h3")
    emitted = scheduler.feed(*(requested(f"i{n:02d}") for n in range(15)))
    assert Counter(scheduled_hosts(emitted)) == {"h1": 4, "h2": 4, "h3": 4}
    assert len(refusals(emitted)) == 3
    for name in ("h1", "h2", "h3"):
        assert scheduler.state.claims.usage_of(name).ram_mb == 8192


def test_spread_puts_each_request_on_the_emptiest_host_and_pack_on_the_fullest() -> None:
    spread = Scheduler()
    fleet(spread, "h1", "h2", "h3")
    assert sorted(scheduled_hosts(spread.feed(*(requested(f"i{n}") for n in range(3))))) == [
        "h1",
        "h2",
        "h3",
    ]
    pack = Scheduler(SchedulerConfig(weigher=Weigher.PACK))
    fleet(pack, "h1", "h2", "h3")
    assert set(scheduled_hosts(pack.feed(*(requested(f"i{n}") for n in range(3))))) == {"h1"}


def test_no_valid_host_says_why_in_words_and_counts_the_attempt() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2")
    scheduler.feed(event(HostDisabled(reason="maintenance"), "h2"))
    big = Flavor(name="m1.huge", vcpus=64, ram_mb=2048, disk_gb=20)
    refused = only(scheduler.feed(requested("i1", flavor=big)), InstanceSchedulingFailed)
    assert refused.reason == "no host fits: 1 host disabled, 1 host without 64 vCPU free"
    assert refused.attempts == 1
    assert "i1" not in scheduler.state.claims
    assert scheduler.state.instances["i1"].status == "failed"


def test_a_disabled_host_gets_nothing_until_it_is_enabled_again() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2")
    scheduler.feed(event(HostDisabled(), "h1"))
    assert set(scheduled_hosts(scheduler.feed(*(requested(f"i{n}") for n in range(3))))) == {"h2"}
    scheduler.feed(event(HostEnabled(), "h1"))
    assert scheduled_hosts(scheduler.feed(requested("i9"))) == ["h1"]


def test_allocation_ratios_set_by_an_admin_change_what_a_host_may_sell() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", vcpus=2, ram_mb=65536)  # 2 physical x ratio 4 = 8 vCPU
    four = Flavor(name="c4", vcpus=4, ram_mb=1024, disk_gb=10)
    assert len(scheduled_hosts(scheduler.feed(requested("i1", flavor=four)))) == 1
    scheduler.feed(event(AllocationRatiosSet(cpu=1.0, ram=1.0, disk=1.0), "h1"))
    refused = only(scheduler.feed(requested("i2", flavor=four)), InstanceSchedulingFailed)
    assert refused.reason == "no host fits: 1 host without 4 vCPU free"
    scheduler.feed(event(AllocationRatiosSet(cpu=8.0, ram=1.0, disk=1.0), "*"))
    assert len(scheduled_hosts(scheduler.feed(requested("i3", flavor=four)))) == 0  # override wins


def test_rack_anti_affinity_puts_three_members_in_three_racks_and_refuses_a_fourth() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2", "h3", "h4", "h5", "h6", racks=3)
    scheduler.feed(group_created("web", "anti-affinity", "rack"))
    emitted = scheduler.feed(*(requested(f"web{n}", group="web") for n in range(3)))
    racks = {scheduler.state.hosts[h].rack for h in scheduled_hosts(emitted)}
    assert racks == {"r1", "r2", "r3"}
    refused = only(scheduler.feed(requested("web3", group="web")), InstanceSchedulingFailed)
    assert refused.reason == (
        "no host fits: 6 hosts in a rack already running a member of anti-affinity group web"
    )
    assert scheduler.state.groups["web"].members == {"web0", "web1", "web2"}


def test_a_request_for_a_server_group_not_seen_yet_waits_for_it_then_honours_it() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2")
    held = scheduler.feed(requested("a1", group="g"), requested("a2", group="g"))
    assert held == []  # not placed without its policy
    assert scheduler.state.pending == {"a1", "a2"}
    emitted = scheduler.feed(group_created("g", "anti-affinity", "host"))
    assert sorted(scheduled_hosts(emitted)) == ["h1", "h2"]  # decided in turn: no shared host
    assert scheduler.state.pending == set()


def test_a_request_held_for_a_server_group_that_never_comes_fails_after_the_wait() -> None:
    config = SchedulerConfig(server_group_wait_seconds=60, heartbeat_timeout_seconds=3600)
    scheduler = Scheduler(config)
    fleet(scheduler, "h1")
    scheduler.feed(requested("a1", group="nope", seconds=0))
    assert scheduler.tick(59) == []
    refused = only(scheduler.tick(61), InstanceSchedulingFailed)
    assert refused.reason == "server group nope does not exist (waited 60 s for it)"
    assert scheduler.tick(62) == []  # decided once
    assert scheduled_hosts(scheduler.feed(group_created("nope"))) == []  # too late: it failed


def test_each_rejection_is_logged_at_debug_and_every_refusal_at_info() -> None:
    scheduler = Scheduler()
    fleet(scheduler, "h1", "h2")
    scheduler.feed(event(HostDisabled(), "h2"))
    big = Flavor(name="m1.huge", vcpus=64, ram_mb=2048, disk_gb=20)
    with structlog.testing.capture_logs() as logs:
        scheduler.feed(requested("i1", flavor=big))
    rejected = [(e["host"], e["reason"]) for e in logs if e["event"] == "host_rejected"]
    assert all(e["log_level"] == "debug" for e in logs if e["event"] == "host_rejected")
    assert rejected == [
        ("h1", "host h1 needs 64 vCPU, 16 free of 16 (4 physical at ratio 4)"),
        ("h2", "host h2 is disabled by an administrator"),
    ]
    refusal = only([e for e in logs if e["event"] == "no_valid_host"], dict)
    assert refusal["log_level"] == "info"
    assert refusal["instance_id"] == "i1"
    assert refusal["reason"].startswith("no host fits: ")
