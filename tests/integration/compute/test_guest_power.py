"""Guests that stop without Virga asking, seen by a running agent on real Kafka: through
libvirt's lifecycle events (test:///default, destroyed from a side connection) and the
in-memory driver's simulation; the restart policy; Virga's own stops recorded once; a
hypervisor that comes back is synced. Real QEMU guests: test_qemu_guest_power.py."""

from __future__ import annotations

import time

import pytest
from tests.integration.compute.agent_harness import (
    HOST,
    TINY,
    Cloud,
    Hypervisor,
    LibvirtHypervisor,
    MemoryHypervisor,
    request_event,
    running_agent,
    types,
    wait_until,
)

from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_events import Envelope
from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.compute import StopCause
from virga_events.catalog.scheduler import InstanceScheduled

pytestmark = pytest.mark.kafka

SLOW_SYNC = {"power_sync_seconds": 600.0}
"""No periodic sync during a test: what is recorded came from the lifecycle events."""


def placed(instance_id: str, policy: InstanceRestartPolicy = "never") -> Envelope:
    event = InstanceScheduled(
        host=HOST,
        rack="r1",
        zone="z1",
        attempt=1,
        name=instance_id,
        flavor=TINY,
        restart_policy=policy,
    )
    return request_event(event, instance_id, "scheduler")


def stop_outside(host: Hypervisor, instance_id: str, cause: StopCause = "destroyed") -> None:
    """What `virsh destroy` (or the guest itself) does, behind the agent's back."""
    if isinstance(host, MemoryHypervisor):
        host.driver.power_off_outside(instance_id, cause)
    else:
        assert isinstance(host, LibvirtHypervisor)
        assert cause == "destroyed"  # the test driver can only be destroyed
        host.side.lookupByName(domain_name(instance_id)).destroy()


def causes(cloud: Cloud, instance_id: str) -> list[str]:
    return [e.payload.cause for e in cloud.events("InstanceStopped", instance_id)]


async def test_a_guest_destroyed_outside_virga_is_stopped_within_seconds(
    cloud: Cloud, any_host: Hypervisor
) -> None:
    async with running_agent(cloud, any_host, **SLOW_SYNC):
        await cloud.write("scheduler", placed("i-1"))
        await cloud.wait_for("InstanceStarted", "i-1")
        destroyed_at = time.time()
        stop_outside(any_host, "i-1")
        await cloud.wait_for("InstanceStopped", "i-1", seconds=5)
        [stopped] = cloud.events("InstanceStopped", "i-1")
        assert stopped.payload.cause == "destroyed"
        # Usage stops when the agent learnt of it, not at the next sync or sample.
        assert 0 <= stopped.occurred_at.timestamp() - destroyed_at < 5
        # `never`: it stays off, and a start request brings it back, recorded once.
        await cloud.act("i-1", "start")
        await cloud.wait_for("InstanceStarted", "i-1", count=2)
        assert await any_host.state("i-1") is DomainState.RUNNING
        await cloud.act("i-1", "stop")
        await cloud.wait_for("InstanceStopped", "i-1", count=2)
        await cloud.act("i-1", "start")
        await cloud.wait_for("InstanceStarted", "i-1", count=3)
    # Virga's own stop went through the same lifecycle events: still one record of it.
    assert causes(cloud, "i-1") == ["destroyed", "requested"]
    assert types(cloud, "i-1").count("InstanceStarted") == 3


async def test_the_restart_policy_restarts_a_crashed_guest_and_not_a_shut_down_one(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    async with running_agent(cloud, memory_host, **SLOW_SYNC):
        await cloud.write("scheduler", placed("i-crash", "on-crash"))
        await cloud.write("scheduler", placed("i-down", "on-crash"))
        await cloud.write("scheduler", placed("i-always", "always"))
        for instance_id in ("i-crash", "i-down", "i-always"):
            await cloud.wait_for("InstanceStarted", instance_id)
        memory_host.driver.power_off_outside("i-crash", "crashed")
        memory_host.driver.power_off_outside("i-down", "shutdown")
        memory_host.driver.power_off_outside("i-always", "shutdown")
        await cloud.wait_for("InstanceRestarted", "i-crash", seconds=5)
        await cloud.wait_for("InstanceRestarted", "i-always", seconds=5)
        await cloud.wait_for("InstanceStopped", "i-down", seconds=5)
        [restarted] = cloud.events("InstanceRestarted", "i-crash")
        assert (restarted.payload.cause, restarted.payload.policy) == ("crashed", "on-crash")
        assert types(cloud, "i-crash") == [
            "InstanceStarted",
            "InstanceStopped",
            "InstanceRestarted",
        ]
        assert await memory_host.state("i-crash") is DomainState.RUNNING
        assert await memory_host.state("i-always") is DomainState.RUNNING
        assert await memory_host.state("i-down") is DomainState.SHUTOFF
        assert causes(cloud, "i-down") == ["shutdown"]
        assert "InstanceRestarted" not in types(cloud, "i-down")


async def test_a_hypervisor_that_comes_back_is_synced_at_once(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    async with running_agent(cloud, memory_host, **SLOW_SYNC) as agent:
        await cloud.write("scheduler", placed("i-1"))
        await cloud.write("scheduler", placed("i-2"))
        await cloud.wait_for("InstanceStarted", "i-1")
        await cloud.wait_for("InstanceStarted", "i-2")
        # Changes while nobody listened (the hypervisor was away): no event reports them...
        memory_host.driver.crash("i-1")
        await memory_host.driver.destroy("i-2")
        # ...until the driver says it reconnected: then everything is read again.
        memory_host.driver.hypervisor_restarted()
        await cloud.wait_for("InstanceStopped", "i-1", seconds=5)
        await cloud.wait_for("InstanceDomainLost", "i-2", seconds=5)
        await wait_until(lambda: agent.state.instances["i-2"].domain_lost, 5)
    assert causes(cloud, "i-1") == ["crashed"]
