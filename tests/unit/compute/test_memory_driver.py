"""The memory driver's test hooks, which the compute agent's tests will lean on."""

from __future__ import annotations

import pytest

from virga_compute.core.spec import DomainInfo, DomainState, InstanceSpec
from virga_compute.drivers.base import DriverError, HostCapacity, HypervisorUnavailable
from virga_compute.drivers.memory import MemoryComputeDriver

SPEC = InstanceSpec(instance_id="i-1", name="n", vcpus=1, ram_mb=128)


async def test_an_injected_failure_fires_once_and_changes_nothing() -> None:
    driver = MemoryComputeDriver()
    driver.fail_next("spawn", DriverError("no room"))
    with pytest.raises(DriverError, match="no room"):
        await driver.spawn(SPEC)
    assert (await driver.get_info("i-1")).state is DomainState.MISSING
    await driver.spawn(SPEC)
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING


async def test_an_unavailable_hypervisor_refuses_everything_until_back() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(SPEC)
    driver.set_available(False)
    with pytest.raises(HypervisorUnavailable):
        await driver.list_instances()
    with pytest.raises(HypervisorUnavailable):
        await driver.destroy("i-1")
    driver.set_available(True)
    assert await driver.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]


async def test_a_crashed_guest_stays_crashed_until_started() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(SPEC)
    driver.crash("i-1")
    await driver.stop("i-1")
    assert await driver.list_instances() == [DomainInfo("i-1", DomainState.CRASHED)]
    assert await driver.usage() == []
    await driver.start("i-1")
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING


async def test_counters_accumulate_and_restart_with_the_guest() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(SPEC)
    driver.add_usage("i-1", cpu_time_ns=5, net_rx_bytes=7)
    driver.add_usage("i-1", cpu_time_ns=5)
    await driver.reboot("i-1")  # a soft reboot keeps the same QEMU process
    [sample] = await driver.usage()
    assert (sample.cpu_time_ns, sample.net_rx_bytes, sample.memory_kb) == (10, 7, 128 * 1024)
    await driver.reboot("i-1", hard=True)
    [sample] = await driver.usage()
    assert sample.cpu_time_ns == 0


async def test_capacity_is_what_it_was_given() -> None:
    capacity = HostCapacity(vcpus=2, ram_mb=2048, disk_gb=10)
    assert await MemoryComputeDriver(capacity).capacity() == capacity
