"""Cold resize as the scheduler runs it: the new flavor's claim, the agents' answers, undo."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.scheduler.service_support import Scheduler, event, only, registered, requested

from virga_events import Event
from virga_events.catalog.api import InstanceResizeRequested
from virga_events.catalog.common import Flavor
from virga_events.catalog.compute import (
    InstanceResized,
    InstanceResizeFailed,
    InstanceResizeStopped,
)
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.network import MigrationPortSwitched
from virga_events.catalog.scheduler import (
    BootVolumeGrowRequested,
    InstanceRedefineRequested,
    InstanceResizeRestartRequested,
    InstanceResizeStopRequested,
    MigrationPortSwitchRequested,
    ResizeClaimed,
    ResizeClaimMoved,
    ResizeClaimReleased,
    ResizeRefused,
)
from virga_events.catalog.storage import BootVolumeGrowFailed, BootVolumeGrown
from virga_scheduler.core.resize import resize_claim_id
from virga_scheduler.service import placed_on

MEDIUM = Flavor(name="m1.medium", vcpus=4, ram_mb=4096, disk_gb=40)
HUGE = Flavor(name="m1.huge", vcpus=4, ram_mb=12288, disk_gb=40)
SWITCHED = MigrationPortSwitched(flow_id="r-1", step="switch_port", host="h2")
SWITCHED_H1 = MigrationPortSwitched(flow_id="r-1", step="switch_port", host="h1")


def placed(*, second_host_ram: int = 16384) -> Scheduler:
    """i1 (m1.small: 2 vCPUs, 2 GiB, 20 GB) runs on h1 (8 GiB); h2 is empty."""
    scheduler = Scheduler()
    scheduler.feed(registered("h1", ram_mb=8192, seconds=0))
    scheduler.feed(requested("i1", seconds=1))
    scheduler.feed(registered("h2", ram_mb=second_host_ram, seconds=2))
    return scheduler


def resize(scheduler: Scheduler, flavor: Flavor = MEDIUM) -> str:
    asked = event(InstanceResizeRequested(flavor=flavor, flow_id="r-1"), "i1", "t-1", seconds=10)
    scheduler.feed(asked)
    return "r-1"


def answer(scheduler: Scheduler, payload: Event, host: str, seconds: float = 11) -> list[Event]:
    return scheduler.feed(event(payload, "i1", "t-1", seconds=seconds, producer=f"compute@{host}"))


def run_to_the_end(scheduler: Scheduler, host: str) -> list[Event]:
    answer(
        scheduler,
        InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=True),
        "h1",
    )
    emitted = answer(scheduler, BootVolumeGrown(flow_id="r-1", step="grow", size_gb=40), "storage")
    asked = only(emitted, InstanceRedefineRequested)
    assert asked.placement.host == host
    assert asked.placement.flavor == MEDIUM
    assert asked.start
    done = InstanceResized(flow_id="r-1", step="redefine", host=host, flavor=MEDIUM, running=True)
    return answer(scheduler, done, host)


def test_a_resize_in_place_claims_the_new_flavor_beside_the_old_then_keeps_only_it() -> None:
    scheduler = placed()
    resize(scheduler)
    claimed = only(scheduler.outputs_payloads(), ResizeClaimed)
    assert claimed.host == "h1"
    assert claimed.flavor == MEDIUM
    assert only(scheduler.outputs_payloads(), InstanceResizeStopRequested).host == "h1"
    emitted = run_to_the_end(scheduler, "h1")
    moved = only(emitted, ResizeClaimMoved)
    assert (moved.source, moved.destination, moved.flavor) == ("h1", "h1", MEDIUM)
    only(emitted, FlowCompleted)
    held = scheduler.state.claims.get("i1")
    assert held is not None
    assert (held.host, held.vcpus, held.ram_mb) == ("h1", 4, 4096)
    assert scheduler.state.claims.get(resize_claim_id("i1", "r-1")) is None
    assert scheduler.state.claims.usage_of("h1").ram_mb == 4096
    record = scheduler.state.instances["i1"]
    assert record.requested is not None
    assert record.requested.flavor == MEDIUM


def test_a_resize_that_does_not_fit_its_host_moves_to_another() -> None:
    scheduler = placed()
    resize(scheduler, HUGE)
    assert only(scheduler.outputs_payloads(), ResizeClaimed).host == "h2"
    answer(
        scheduler,
        InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=False),
        "h1",
    )
    assert placed_on(scheduler.state, "i1") == "h1"
    emitted = answer(scheduler, BootVolumeGrown(flow_id="r-1", step="grow", size_gb=40), "storage")
    switch = only(emitted, MigrationPortSwitchRequested)
    assert (switch.source, switch.host, switch.step) == ("h1", "h2", "switch_port")
    # From the switch on, h2's agents report on it (its port binds there); before, h1's.
    assert placed_on(scheduler.state, "i1") == "h2"
    assert not [e for e in emitted if isinstance(e, InstanceRedefineRequested)]
    # Only the new host's network agent may answer the switch.
    assert answer(scheduler, SWITCHED_H1, "h1") == []
    emitted = answer(scheduler, SWITCHED, "h2")
    asked = only(emitted, InstanceRedefineRequested)
    assert (asked.source, asked.placement.host, asked.start) == ("h1", "h2", False)
    # Only the host asked may answer: h1 saying it redefined the guest changes nothing.
    wrong = InstanceResized(flow_id="r-1", step="redefine", host="h1", flavor=HUGE, running=False)
    assert answer(scheduler, wrong, "h1") == []
    done = InstanceResized(flow_id="r-1", step="redefine", host="h2", flavor=HUGE, running=False)
    only(answer(scheduler, done, "h2"), FlowCompleted)
    assert scheduler.host_of("i1") == "h2"
    assert placed_on(scheduler.state, "i1") == "h2"
    assert scheduler.state.claims.usage_of("h1").ram_mb == 0
    assert scheduler.state.claims.usage_of("h2").ram_mb == 12288


def test_a_resize_no_host_has_room_for_fails_at_once_and_leaves_the_claim_alone() -> None:
    scheduler = placed(second_host_ram=4096)
    resize(scheduler, HUGE)
    refused = only(scheduler.outputs_payloads(), ResizeRefused)
    assert "no room on host h1" in refused.reason
    assert only(scheduler.outputs_payloads(), FlowFailed).reason == refused.reason
    assert scheduler.state.claims.usage_of("h1").ram_mb == 2048


def test_a_failed_grow_restarts_the_guest_and_releases_the_hold() -> None:
    scheduler = placed()
    resize(scheduler)
    answer(
        scheduler,
        InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=True),
        "h1",
    )
    broke = BootVolumeGrowFailed(flow_id="r-1", step="grow", reason="pool full")
    emitted = answer(scheduler, broke, "storage")
    assert only(emitted, InstanceResizeRestartRequested).host == "h1"
    assert only(emitted, ResizeClaimReleased).host == "h1"
    assert only(emitted, FlowFailed).reason == "pool full"
    held = scheduler.state.claims.get("i1")
    assert held is not None
    assert held.ram_mb == 2048
    assert scheduler.state.claims.usage_of("h1").ram_mb == 2048


def test_an_instance_without_an_image_has_no_volume_to_grow() -> None:
    scheduler = Scheduler()
    scheduler.feed(registered("h1", ram_mb=8192))
    asked = requested("i1", seconds=5).payload
    scheduler.feed(event(replace(asked, image=None), "i1", "t-1", seconds=5, producer="gateway"))
    resize(scheduler)
    emitted = answer(
        scheduler,
        InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=True),
        "h1",
    )
    assert not [e for e in emitted if isinstance(e, BootVolumeGrowRequested)]
    only(emitted, InstanceRedefineRequested)


# Each step of the flow, answered well or badly (or never, till its deadline), in any order:
# the flow ends with the instance as it was or resized, and with one claim.
Outcome = st.sampled_from(["ok", "fail", "timeout"])


@settings(max_examples=60, deadline=None)
@given(stop=Outcome, grow=Outcome, switch=Outcome, redefine=Outcome, huge=st.booleans())
def test_any_outcome_of_the_steps_ends_with_one_claim_as_before_or_resized(
    stop: str, grow: str, switch: str, redefine: str, huge: bool
) -> None:
    scheduler = placed()
    flavor = HUGE if huge else MEDIUM
    resize(scheduler, flavor)
    host = "h2" if huge else "h1"
    seconds = 11.0
    answers: list[tuple[str, Event, str]] = [
        (
            stop,
            InstanceResizeStopped(flow_id="r-1", step="stop", host="h1", was_running=True),
            "h1",
        ),
        (stop, InstanceResizeFailed(flow_id="r-1", step="stop", host="h1", reason="x"), "h1"),
        (grow, BootVolumeGrown(flow_id="r-1", step="grow", size_gb=40), "storage"),
        (grow, BootVolumeGrowFailed(flow_id="r-1", step="grow", reason="x"), "storage"),
        # A switch has no failure answer: "fail" is an answer from the wrong host (ignored).
        (switch, SWITCHED, "h2"),
        (switch, SWITCHED_H1, "h1"),
        (
            redefine,
            InstanceResized(flow_id="r-1", step="redefine", host=host, flavor=flavor, running=True),
            host,
        ),
        (
            redefine,
            InstanceResizeFailed(flow_id="r-1", step="redefine", host=host, reason="x"),
            host,
        ),
    ]
    if not huge:
        del answers[4:6]  # in place, the scheduler answers the switch itself
    for n in range(0, len(answers), 2):
        outcome = answers[n][0]
        if outcome != "timeout":
            _, payload, by = answers[n] if outcome == "ok" else answers[n + 1]
            answer(scheduler, payload, by, seconds)
        step = scheduler.state.flows.flows["r-1"].step
        for _ in range(5):  # every attempt of the step times out (an ignored answer, too)
            running = scheduler.state.flows.flows["r-1"]
            if running.outcome != "running" or running.step != step or outcome == "ok":
                break
            seconds += 600
            scheduler.tick(seconds)
        if scheduler.state.flows.flows["r-1"].outcome != "running":
            break
    flow = scheduler.state.flows.flows["r-1"]
    assert flow.outcome != "running"
    assert scheduler.state.claims.get(resize_claim_id("i1", "r-1")) is None
    held = scheduler.state.claims.get("i1")
    record = scheduler.state.instances["i1"]
    assert held is not None
    assert record.requested is not None
    total = sum(scheduler.state.claims.usage_of(h).ram_mb for h in ("h1", "h2"))
    assert total == held.ram_mb  # one claim, nothing else held
    if flow.outcome == "completed":
        assert (held.host, held.ram_mb, record.requested.flavor) == (host, flavor.ram_mb, flavor)
    else:
        assert (held.host, held.ram_mb, record.requested.flavor.name) == ("h1", 2048, "m1.small")
    switched = [
        e for e in scheduler.outputs_payloads() if isinstance(e, MigrationPortSwitchRequested)
    ]
    steps = [e.step for e in switched]
    if not (huge and stop == grow == "ok"):
        assert steps == []  # in place, or failed before: no port moves
    else:
        undone = switch == "ok" and flow.outcome != "completed"
        assert steps[0] == "switch_port"
        assert steps.count("switch_back") == (1 if undone else 0)
        assert set(steps) <= {"switch_port", "switch_back"}
