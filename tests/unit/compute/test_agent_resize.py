"""A compute agent's part in a cold resize (`core.resize`, `effects.resize`): stop, redefine
in place, restart after a failure; over the memory driver (a move: test_agent_resize_move)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from tests.unit.compute.test_agent_migration import (
    T0,
    config,
    envelope,
    payloads,
    placement,
    running_on,
)

from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.power import PowerChanged, on_guest
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import DomainState, InstanceSpec
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.intents import Reconcile, Redefine, RestartAfterResize, StopForResize
from virga_compute.effects.resize import resize_handlers
from virga_events import Event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import (
    InstanceResized,
    InstanceResizeFailed,
    InstanceResizeStopped,
    InstanceStarted,
    InstanceStopped,
)
from virga_events.catalog.flows import FlowFailed
from virga_events.catalog.scheduler import (
    InstanceRedefineRequested,
    InstanceResizeRestartRequested,
    InstanceResizeStopRequested,
)
from virga_runtime import Emit, Intent

HOST, OTHER = "host-a", "host-b"
BIG = Flavor(name="m1.big", vcpus=2, ram_mb=512, disk_gb=2)
FLOW = "resize-1"


def step(
    state: ComputeState, event: Event, producer: str, seconds: float
) -> tuple[ComputeState, Sequence[Intent]]:
    asked = envelope(event, producer, seconds)
    state = evolve(state, asked)
    return state, decide(config(HOST), state, asked)


def fold(state: ComputeState, emits: Sequence[Emit], seconds: float) -> ComputeState:
    for emit in emits:
        state = evolve(state, envelope(emit.payload, f"compute@{HOST}", seconds))
    return state


def redefine(host: str = HOST, start: bool = True) -> InstanceRedefineRequested:
    moved = placement(host)
    return InstanceRedefineRequested(
        flow_id=FLOW,
        step="redefine",
        source=HOST,
        placement=replace(moved, flavor=BIG),
        start=start,
    )


async def spawned(driver: MemoryComputeDriver) -> None:
    await driver.spawn(
        InstanceSpec(instance_id="i-1", name="vm", vcpus=1, ram_mb=256, disks=(), nics=())
    )


async def test_a_running_guest_is_stopped_redefined_and_started_with_the_new_flavor() -> None:
    driver = MemoryComputeDriver()
    await spawned(driver)
    handlers = resize_handlers(driver)
    state = running_on(HOST)
    state, intents = step(
        state, InstanceResizeStopRequested(flow_id=FLOW, step="stop", host=HOST), "scheduler", 10
    )
    (stop,) = intents
    assert isinstance(stop, StopForResize)
    # Held by the resize: a stop seen by the hypervisor is not taken for a crash.
    off = PowerChanged("i-1", DomainState.SHUTOFF, "shutdown", T0.replace(second=11))
    assert on_guest(config(HOST), state, off) == ()
    (reconcile,) = [i for i in on_ready(config(HOST), state) if isinstance(i, Reconcile)]
    assert reconcile.leave_alone == ("i-1",)
    stopped = await handlers[StopForResize](stop)
    assert payloads(stopped) == [
        InstanceResizeStopped(flow_id=FLOW, step="stop", host=HOST, was_running=True)
    ]
    state = fold(state, stopped, 11)
    state = restore(snapshot(state))  # a restart of the agent keeps the resize's hold
    assert state.instances["i-1"].resize_flow == FLOW

    state, intents = step(state, redefine(), "scheduler", 12)
    (again,) = intents
    assert again == Redefine("i-1", "t-1", HOST, FLOW, "redefine", BIG, True)
    resized = await handlers[Redefine](again)
    assert payloads(resized) == [
        InstanceResized(flow_id=FLOW, step="redefine", host=HOST, flavor=BIG, running=True)
    ]
    assert driver.defined_size("i-1") == (2, 512)
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING
    state = fold(state, resized, 13)
    record = state.instances["i-1"]
    assert (record.vcpus, record.ram_mb, record.status, record.resize_flow) == (
        2,
        512,
        "running",
        None,
    )


async def test_a_stopped_guest_is_answered_at_once_and_stays_stopped() -> None:
    state = running_on(HOST)
    state = evolve(state, envelope(InstanceStopped(host=HOST), f"compute@{HOST}", 2))
    state, intents = step(
        state, InstanceResizeStopRequested(flow_id=FLOW, step="stop", host=HOST), "scheduler", 10
    )
    assert payloads(intents) == [
        InstanceResizeStopped(flow_id=FLOW, step="stop", host=HOST, was_running=False)
    ]
    state = fold(state, intents, 11)  # type: ignore[arg-type]
    state, intents = step(
        state, InstanceResizeRestartRequested(flow_id=FLOW, host=HOST), "scheduler", 12
    )
    assert not intents  # it did not run: the undo starts nothing


async def test_a_failed_resize_starts_the_guest_it_stopped_again_unchanged() -> None:
    driver = MemoryComputeDriver()
    await spawned(driver)
    handlers = resize_handlers(driver)
    state = running_on(HOST)
    state, (stop,) = step(
        state, InstanceResizeStopRequested(flow_id=FLOW, step="stop", host=HOST), "scheduler", 10
    )
    state = fold(state, await handlers[StopForResize](stop), 11)
    state, intents = step(
        state, InstanceResizeRestartRequested(flow_id=FLOW, host=HOST), "scheduler", 12
    )
    (restart,) = intents
    assert restart == RestartAfterResize("i-1", "t-1", HOST)
    started = await handlers[RestartAfterResize](restart)
    assert payloads(started) == [InstanceStarted(host=HOST)]
    assert driver.defined_size("i-1") == (1, 256)
    state = fold(state, started, 13)
    failed = FlowFailed(subject="i-1", reason="pool full", compensated=("stop", "claim"))
    state = evolve(state, envelope(failed, "scheduler", 13, aggregate=FLOW))
    record = state.instances["i-1"]
    assert (record.status, record.resize_flow, record.ram_mb) == ("running", None, 256)


async def test_a_driver_that_cannot_redefine_answers_the_step_failed_and_changes_nothing() -> None:
    driver = MemoryComputeDriver()
    await spawned(driver)  # still running: the driver refuses
    (failed,) = await resize_handlers(driver)[Redefine](
        Redefine("i-1", "t-1", HOST, FLOW, "redefine", BIG, True)
    )
    assert isinstance(failed.payload, InstanceResizeFailed)
    assert driver.defined_size("i-1") == (1, 256)


def test_a_resize_to_another_host_is_left_to_the_hosts_it_moves_between() -> None:
    """The move itself: test_agent_resize_move.py. A host it does not touch does nothing."""
    asked = envelope(redefine(OTHER), "scheduler", 12)
    third = ComputeState("host-c")
    assert not decide(config("host-c"), evolve(third, asked), asked)
    # ...and the instance's own host leaves its stopped domain alone until the claim moves.
    here = running_on(HOST)
    assert not decide(config(HOST), evolve(here, asked), asked)
