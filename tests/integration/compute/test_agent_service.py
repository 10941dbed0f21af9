"""The compute agent as a running service: real Kafka, and libvirt's test hypervisor or the
in-memory driver, driven only through the events a scheduler and a gateway would write."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tests.integration.compute.agent_harness import (
    HOST,
    Cloud,
    Hypervisor,
    LibvirtHypervisor,
    MemoryHypervisor,
    placement,
    running_agent,
    start_agent,
    types,
    wait_until,
)
from tests.support.ports import free_port

from virga_compute.core.spec import DomainState, InstanceSpec
from virga_eventlog import (
    EventWriter,
    event_topic,
)
from virga_events import Envelope

pytestmark = pytest.mark.kafka


# -- behaviour -----------------------------------------------------------------------------------


async def test_an_instance_lives_and_dies_as_the_log_says(
    cloud: Cloud, any_host: Hypervisor
) -> None:
    async with running_agent(cloud, any_host):
        [registered] = cloud.events("HostRegistered", HOST)
        assert registered.producer == f"compute@{HOST}"
        await cloud.schedule("i-elsewhere", host="hv-2")
        placed = await cloud.schedule("i-1")
        await cloud.wait_for("InstanceStarted", "i-1")
        [started] = cloud.events("InstanceStarted", "i-1")
        assert started.payload.host == HOST
        assert started.causation_id == placed.event_id
        order = [e.type for e in cloud.compute]
        assert order.index("HostRegistered") < order.index("InstanceStarted")
        assert await any_host.state("i-1") is DomainState.RUNNING

        for action, outcome, domain in [
            ("stop", "InstanceStopped", DomainState.SHUTOFF),
            ("start", "InstanceStarted", DomainState.RUNNING),
            ("reboot", "InstanceRebooted", DomainState.RUNNING),
        ]:
            await cloud.act("i-1", action)
            await cloud.wait_for(outcome, "i-1", count=2 if outcome == "InstanceStarted" else 1)
            assert await any_host.state("i-1") is domain

        await cloud.delete("i-1")
        await cloud.wait_for("InstanceDeleted", "i-1")
        assert await any_host.state("i-1") is DomainState.MISSING
    assert types(cloud, "i-1") == [
        "InstanceStarted",
        "InstanceStopped",
        "InstanceStarted",
        "InstanceRebooted",
        "InstanceDeleted",
    ]
    assert types(cloud, "i-elsewhere") == []
    assert await any_host.state("i-elsewhere") is DomainState.MISSING


async def test_a_deletion_that_overtakes_the_placement_means_no_domain_ever(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    async with running_agent(cloud, memory_host) as agent:
        await cloud.delete("i-1")
        await wait_until(lambda: "i-1" in agent.state.pending_deletions)
        await cloud.schedule("i-1")
        await cloud.wait_for("InstanceDeleted", "i-1")
        [deleted] = cloud.events("InstanceDeleted", "i-1")
        assert deleted.payload.host == HOST
        assert agent.state.pending_deletions == {}
    assert types(cloud, "i-1") == ["InstanceDeleted"]
    assert memory_host.driver.spawned == []


async def test_a_failed_spawn_is_reported_and_leaves_no_domain(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    from virga_compute.drivers.base import DriverError

    memory_host.driver.fail_next("spawn", DriverError("out of hugepages"))
    async with running_agent(cloud, memory_host) as agent:
        await cloud.schedule("i-1")
        await cloud.wait_for("InstanceFailed", "i-1")
        [failed] = cloud.events("InstanceFailed", "i-1")
        assert (failed.payload.phase, failed.payload.reason) == ("spawn", "out of hugepages")
        assert await memory_host.state("i-1") is DomainState.MISSING
        assert agent.state.instances == {}  # the scheduler places it elsewhere


async def test_a_restarted_agent_repeats_nothing(
    cloud: Cloud, libvirt_host: LibvirtHypervisor
) -> None:
    agent = await start_agent(cloud, libvirt_host)
    await cloud.schedule("i-1")
    await cloud.wait_for("InstanceStarted", "i-1")
    await agent.stop(snapshot=False)  # as a crash would: the next one rebuilds from the log
    await cloud.schedule("i-1")  # the scheduler repeats the placement meanwhile

    agent = await start_agent(cloud, libvirt_host)  # rebuilt from the log
    rebuilt = agent.state
    await agent.stop()  # graceful: a snapshot
    agent = await start_agent(cloud, libvirt_host)  # restored from the snapshot
    try:
        assert agent.state == rebuilt
        assert agent.runner.rebuild_records == 0  # all of it came from the snapshot
        assert agent.state.instances["i-1"].status == "running"
    finally:
        await agent.stop()
    assert types(cloud, "i-1") == ["InstanceStarted"]
    assert len(cloud.events("HostRegistered", HOST)) == 3
    assert [d.name() for d in libvirt_host.side.listAllDomains(0)].count("virga-i-1") == 1
    assert await libvirt_host.state("i-1") is DomainState.RUNNING


async def test_at_start_the_agent_restores_what_the_log_says_and_reports_strangers(
    cloud: Cloud, libvirt_host: LibvirtHypervisor
) -> None:
    async with running_agent(cloud, libvirt_host):
        await cloud.schedule("i-lost")
        await cloud.schedule("i-stopped")
        await cloud.wait_for("InstanceStarted", "i-stopped")
        await cloud.act("i-stopped", "stop")
        await cloud.wait_for("InstanceStopped", "i-stopped")
        await cloud.wait_for("InstanceStarted", "i-lost")

    # Behind the agent's back: a domain vanishes, a stopped one is started, and a Virga
    # domain appears that this log never placed (another deployment's, a leftover).
    _remove_domain(libvirt_host.side, "virga-i-lost")
    libvirt_host.side.lookupByName("virga-i-stopped").create()
    stranger = await libvirt_host.new_driver()
    await stranger.spawn(InstanceSpec(instance_id="i-ghost", name="ghost", vcpus=1, ram_mb=64))
    await libvirt_host.release(stranger)

    async with running_agent(cloud, libvirt_host) as agent:
        await cloud.wait_for("InstanceStarted", "i-lost", count=2)
        await cloud.wait_for("UnknownDomainFound", HOST)
        await cloud.wait_for("InstanceStopped", "i-stopped", count=2)
        assert agent.state.running() == 1
    assert types(cloud, "i-lost") == ["InstanceStarted", "InstanceDomainLost", "InstanceStarted"]
    assert await libvirt_host.state("i-lost") is DomainState.RUNNING
    assert await libvirt_host.state("i-stopped") is DomainState.SHUTOFF
    [unknown] = cloud.events("UnknownDomainFound", HOST)
    assert unknown.payload.domain == "virga-i-ghost"
    assert await libvirt_host.state("i-ghost") is DomainState.RUNNING  # never destroyed


def _remove_domain(conn: Any, name: str) -> None:
    dom = conn.lookupByName(name)
    dom.destroy()
    dom.undefine()


async def test_heartbeats_and_usage_samples_keep_their_cadence(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    async with running_agent(cloud, memory_host, heartbeat_seconds=0.2, usage_seconds=0.6):
        await cloud.schedule("i-1")
        await cloud.wait_for("InstanceStarted", "i-1")
        memory_host.driver.add_usage("i-1", cpu_time_ns=123_000, disk_write_bytes=4096)

        def counted() -> list[Envelope]:
            return [
                e for e in cloud.events("UsageSampled", "i-1") if e.payload.cpu_time_ns == 123_000
            ]

        await wait_until(lambda: len(counted()) >= 2)
        beats = cloud.events("HostHeartbeat", HOST)
        samples = cloud.events("UsageSampled", "i-1")
    assert beats[-1].payload.running == 1
    # A heartbeat every tick, a usage sample only every third: the ratio, with one sample of
    # slack for where the two series started, holds however slow a loaded machine is.
    assert len(beats) >= 2 * (len(samples) - 1)
    last = counted()[-1].payload
    assert (last.disk_write_bytes, last.memory_kb, last.host) == (4096, 128 * 1024, HOST)
    assert 0.4 < last.period_seconds < 5  # since the sample before: never early, late if loaded


async def test_the_agent_process_serves_health_and_stops_cleanly_on_sigterm(
    cloud: Cloud, kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "VIRGA_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "VIRGA_NAMESPACE": cloud.namespace,
        "VIRGA_HOST": "hv-proc",
        "VIRGA_ZONE": "az-1",
        "VIRGA_TRAITS": "ssd,avx2",
        "VIRGA_LIBVIRT_URI": "memory://",
        "VIRGA_HTTP_PORT": str(port),
    }
    log = tmp_path / "agent.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "virga_compute", env=env, stdout=out, stderr=out
        )
        try:
            async with aiohttp.ClientSession() as http:

                async def healthy() -> bool:
                    assert proc.returncode is None, log.read_text()[-2000:]
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                for _ in range(300):
                    if await healthy():
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise TimeoutError("the agent never became healthy")
            await cloud.wait_for("HostRegistered", "hv-proc")
        finally:
            proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()[-2000:]
    [registered] = cloud.events("HostRegistered", "hv-proc")
    assert (registered.payload.zone, registered.payload.traits) == ("az-1", ("ssd", "avx2"))
    assert b'"event":"host_registered"' in log.read_bytes()  # JSON logs


async def test_a_restarted_agent_gets_ready_after_transactional_placements(
    cloud: Cloud, memory_host: MemoryHypervisor
) -> None:
    agent = await start_agent(cloud, memory_host)
    await agent.stop()
    scheduler = EventWriter(cloud.settings, transactional_id=f"{cloud.namespace}-scheduler")
    async with scheduler, scheduler.transaction() as txn:  # as the scheduler writes
        await txn.append(event_topic("scheduler", cloud.namespace), placement("i-1", "hv-2"))
    agent = await start_agent(cloud, memory_host, ready_seconds=3)  # never registers
    await agent.stop()
