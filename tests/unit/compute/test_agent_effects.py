"""The agent's effect handlers over the in-memory driver: outcomes, failures, cleanup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from virga_compute.core.reconcile import Expected
from virga_compute.core.spec import DomainState, InstanceSpec
from virga_compute.drivers.base import DriverError, HostCapacity, HypervisorUnavailable
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.intents import (
    Destroy,
    PowerAction,
    Reconcile,
    RegisterHost,
    SampleUsage,
    Spawn,
    UsageDue,
)
from virga_compute.effects.lifecycle import ComputeEffects
from virga_events.catalog.compute import (
    HostRegistered,
    InstanceDeleted,
    InstanceDomainLost,
    InstanceFailed,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
    UnknownDomainFound,
    UsageSampled,
)
from virga_runtime import Emit

HOST = "host-1"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def spec(instance_id: str = "i-1") -> InstanceSpec:
    return InstanceSpec(instance_id=instance_id, name="vm", vcpus=1, ram_mb=256)


@pytest.fixture
def driver() -> MemoryComputeDriver:
    return MemoryComputeDriver(HostCapacity(vcpus=16, ram_mb=65536, disk_gb=500))


@pytest.fixture
def effects(driver: MemoryComputeDriver) -> ComputeEffects:
    return ComputeEffects(driver)


async def state(driver: MemoryComputeDriver, instance_id: str = "i-1") -> DomainState:
    return (await driver.get_info(instance_id)).state


async def test_registration_reports_the_drivers_capacity(effects: ComputeEffects) -> None:
    emits = await effects.register_host(RegisterHost(HOST, "r1", "z1", ("ssd",)))
    registered = HostRegistered(
        rack="r1", zone="z1", vcpus=16, ram_mb=65536, disk_gb=500, traits=("ssd",)
    )
    assert emits == [Emit(registered, HOST, None)]


async def test_no_hypervisor_at_registration_stops_the_agent(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    driver.set_available(False)
    with pytest.raises(HypervisorUnavailable):
        await effects.register_host(RegisterHost(HOST, "r1", "z1", ()))


async def test_a_spawn_starts_the_domain(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    assert await effects.spawn(Spawn(spec(), "t-1", HOST)) == [
        Emit(InstanceStarted(host=HOST), "i-1", "t-1")
    ]
    assert await state(driver) is DomainState.RUNNING


async def test_a_failed_spawn_leaves_no_domain_even_one_an_earlier_attempt_defined(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    await driver.spawn(spec())  # an attempt interrupted before its outcome was written
    await driver.stop("i-1")
    driver.fail_next("spawn", DriverError("no space for the domain"))
    [emit] = await effects.spawn(Spawn(spec(), "t-1", HOST))
    assert emit.payload == InstanceFailed(
        host=HOST, phase="spawn", reason="no space for the domain"
    )
    assert await state(driver) is DomainState.MISSING


@pytest.mark.parametrize(
    ("action", "outcome"),
    [
        ("stop", InstanceStopped(host=HOST)),
        ("start", InstanceStarted(host=HOST)),
        ("reboot", InstanceRebooted(host=HOST)),
    ],
)
async def test_power_actions_report_their_outcome_or_failure(
    driver: MemoryComputeDriver, effects: ComputeEffects, action: str, outcome: object
) -> None:
    await driver.spawn(spec())
    effect = PowerAction("i-1", "t-1", HOST, action)  # type: ignore[arg-type]
    assert await effects.power_action(effect) == [Emit(outcome, "i-1", "t-1")]  # type: ignore[arg-type]
    driver.fail_next(action, DriverError("guest wedged"))
    [failed] = await effects.power_action(effect)
    assert failed.payload == InstanceFailed(host=HOST, phase=action, reason="guest wedged")  # type: ignore[arg-type]


async def test_a_stop_of_a_domain_the_host_lost_records_the_instance_stopped(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    # Found by the chaos test: an agent killed on the test driver comes back without its
    # domains; a stop asked meanwhile failed as "not found", and reconciliation then spawned
    # the instance again, so the user's accepted stop ended RUNNING.
    [emit] = await effects.power_action(PowerAction("i-1", "t-1", HOST, "stop"))
    assert emit.payload == InstanceStopped(host=HOST)
    assert await state(driver) is DomainState.MISSING


async def test_destroy_removes_the_domain_and_reports_a_failure(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    await driver.spawn(spec())
    driver.fail_next("destroy", DriverError("busy"))
    [failed] = await effects.destroy(Destroy("i-1", "t-1", HOST))
    assert failed.payload == InstanceFailed(host=HOST, phase="delete", reason="busy")
    assert await state(driver) is DomainState.RUNNING
    assert await effects.destroy(Destroy("i-1", "t-1", HOST)) == [
        Emit(InstanceDeleted(host=HOST), "i-1", "t-1")
    ]
    assert await state(driver) is DomainState.MISSING


async def test_usage_is_reported_for_due_instances_over_their_period(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    await driver.spawn(spec("i-1"))
    await driver.spawn(spec("i-2"))  # running, but not due: no sample
    driver.add_usage("i-1", cpu_time_ns=7_000, net_rx_bytes=300)
    at = T0 + timedelta(seconds=60)
    emits = await effects.sample_usage(SampleUsage(HOST, at, (UsageDue("i-1", "t-1", T0),)))
    assert emits == [
        Emit(
            UsageSampled(
                host=HOST,
                period_seconds=60.0,
                cpu_time_ns=7_000,
                memory_kb=256 * 1024,
                disk_read_bytes=0,
                disk_write_bytes=0,
                net_rx_bytes=300,
                net_tx_bytes=0,
            ),
            "i-1",
            "t-1",
        )
    ]
    driver.set_available(False)  # a missed sample: the period just goes on
    assert await effects.sample_usage(SampleUsage(HOST, at, (UsageDue("i-1", "t-1", T0),))) == []


async def test_reconciliation_restarts_lost_and_stopped_domains_and_reports_strangers(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    await driver.spawn(spec("i-off"))
    await driver.stop("i-off")
    await driver.spawn(spec("i-ghost"))  # a Virga domain the log does not place here
    driver.add_foreign_domain("virga-handmade")  # not Virga's at all: invisible
    reconcile = Reconcile(
        HOST,
        "restart",
        (
            Expected(spec("i-lost"), "t-1", should_run=True, lost=False),
            Expected(spec("i-off"), "t-2", should_run=True, lost=False),
        ),
    )
    emits = await effects.reconcile(reconcile)
    assert emits == [
        Emit(InstanceDomainLost(host=HOST), "i-lost", "t-1"),
        Emit(InstanceStarted(host=HOST), "i-lost", "t-1"),
        Emit(InstanceStarted(host=HOST), "i-off", "t-2"),
        Emit(UnknownDomainFound(domain="virga-i-ghost"), HOST, None),
    ]
    assert await state(driver, "i-lost") is DomainState.RUNNING
    assert await state(driver, "i-off") is DomainState.RUNNING
    assert await state(driver, "i-ghost") is DomainState.RUNNING
    assert driver.has_domain("virga-handmade")


async def test_a_failed_respawn_is_reported_as_a_failed_restart(
    driver: MemoryComputeDriver, effects: ComputeEffects
) -> None:
    driver.fail_next("spawn", DriverError("image gone"))
    reconcile = Reconcile(HOST, "restart", (Expected(spec(), "t-1", should_run=True, lost=True),))
    assert await effects.reconcile(reconcile) == [
        Emit(InstanceFailed(host=HOST, phase="restart", reason="image gone"), "i-1", "t-1")
    ]
