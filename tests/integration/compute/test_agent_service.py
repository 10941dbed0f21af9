"""The compute agent as a running service: real Kafka, and libvirt's test hypervisor or the
in-memory driver, driven only through the events a scheduler and a gateway would write."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import libvirt
import pytest
from aiokafka import AIOKafkaProducer
from tests.support.kafka import following

from virga_compute.agent_state import AgentState
from virga_compute.config import AgentConfig
from virga_compute.domain_xml import DomainSettings, domain_name
from virga_compute.driver import ComputeDriver, DomainState, InstanceSpec
from virga_compute.libvirt_driver import LibvirtDriver
from virga_compute.memory_driver import MemoryDriver
from virga_compute.service import definition, runner_config
from virga_eventlog import (
    EventWriter,
    KafkaSettings,
    ensure_topics,
    event_topic,
    virga_topics,
)
from virga_events import Envelope, Event, encode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime import ServiceRunner

pytestmark = pytest.mark.kafka

HOST = "hv-1"
TEST_URI = "test:///default"
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=128, disk_gb=1)


# -- the hypervisor of the host under test, seen from outside the agent ----------------------


class Hypervisor:
    """Makes the driver an agent process would open, and looks at domains independently."""

    kind = ""

    async def new_driver(self) -> ComputeDriver:
        raise NotImplementedError

    async def release(self, driver: ComputeDriver) -> None:
        """What the agent process's exit does to its driver."""

    async def state(self, instance_id: str) -> DomainState:
        raise NotImplementedError


class MemoryHypervisor(Hypervisor):
    kind = "memory"

    def __init__(self) -> None:
        self.driver = CountingDriver()

    async def new_driver(self) -> ComputeDriver:
        return self.driver  # the "hypervisor" outlives agent processes

    async def state(self, instance_id: str) -> DomainState:
        return (await self.driver.get_info(instance_id)).state


class CountingDriver(MemoryDriver):
    """Remembers every spawn asked of it, to prove one never happened."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[str] = []

    async def spawn(self, spec: InstanceSpec) -> None:
        self.spawned.append(spec.instance_id)
        await super().spawn(spec)


class LibvirtHypervisor(Hypervisor):
    """libvirt's test:///default, kept alive between agents by a side connection."""

    kind = "libvirt"

    def __init__(self, side: Any, instances_path: Path) -> None:
        self.side = side
        self._path = str(instances_path)

    async def new_driver(self) -> ComputeDriver:
        settings = DomainSettings(domain_type="test")
        return LibvirtDriver(TEST_URI, instances_path=self._path, settings=settings)

    async def release(self, driver: ComputeDriver) -> None:
        await driver.close()

    async def state(self, instance_id: str) -> DomainState:
        try:
            dom = self.side.lookupByName(domain_name(instance_id))
        except libvirt.libvirtError:
            return DomainState.MISSING
        return DomainState.RUNNING if dom.isActive() else DomainState.SHUTOFF


def _remove_virga_domains(conn: Any) -> None:
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("virga-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()


@pytest.fixture
def libvirt_host(tmp_path: Path) -> Iterator[LibvirtHypervisor]:
    # One test hypervisor per process, shared by every connection: start and end clean.
    side = libvirt.open(TEST_URI)
    try:
        _remove_virga_domains(side)
        yield LibvirtHypervisor(side, tmp_path)
        _remove_virga_domains(side)
    finally:
        side.close()


@pytest.fixture
def memory_host() -> MemoryHypervisor:
    return MemoryHypervisor()


@pytest.fixture(params=["memory", "libvirt"])
def any_host(request: pytest.FixtureRequest) -> Hypervisor:
    host: Hypervisor = request.getfixturevalue(f"{request.param}_host")
    return host


# -- the log around the agent ----------------------------------------------------------------


@dataclass
class Cloud:
    """One namespace on the test broker: writes the inputs, follows the agent's topic.

    Inputs go through a plain idempotent producer; the last test writes them in a transaction,
    as the scheduler does, to show a restarted agent passes the commit marker.
    """

    settings: KafkaSettings
    producer: AIOKafkaProducer
    compute: list[Envelope] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    async def write(self, service: str, envelope: Envelope) -> Envelope:
        topic = event_topic(service, self.namespace)
        await self.producer.send_and_wait(
            topic, encode(envelope), key=envelope.aggregate_id.encode()
        )
        return envelope

    async def schedule(self, instance_id: str, host: str = HOST) -> Envelope:
        return await self.write("scheduler", placement(instance_id, host))

    async def act(self, instance_id: str, action: str) -> Envelope:
        event = InstanceActionRequested(action=action)  # type: ignore[arg-type]
        return await self.write("gateway", _request(event, instance_id, "gateway"))

    async def delete(self, instance_id: str) -> Envelope:
        event = InstanceDeletionRequested()
        return await self.write("gateway", _request(event, instance_id, "gateway"))

    def events(self, type_: str, aggregate_id: str | None = None) -> list[Envelope]:
        return [
            e
            for e in self.compute
            if e.type == type_ and (aggregate_id is None or e.aggregate_id == aggregate_id)
        ]

    async def wait_for(
        self, type_: str, aggregate_id: str | None = None, count: int = 1, seconds: float = 20.0
    ) -> None:
        await wait_until(lambda: len(self.events(type_, aggregate_id)) >= count, seconds)


def placement(instance_id: str, host: str = HOST) -> Envelope:
    event = InstanceScheduled(
        host=host, rack="r1", zone="z1", attempt=1, name=instance_id, flavor=TINY
    )
    return _request(event, instance_id, "scheduler")


def _request(event: Event, instance_id: str, producer: str) -> Envelope:
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer=producer)


async def wait_until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    namespace = f"compute-{uuid.uuid4().hex[:10]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=2, namespace=namespace))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        topic = event_topic("compute", namespace)
        async with following(settings, topic, client_id=namespace) as events:
            yield Cloud(settings, producer, compute=events)
    finally:
        await producer.stop()


# -- the agent ---------------------------------------------------------------------------------


@dataclass
class Agent:
    runner: ServiceRunner[AgentState]
    task: asyncio.Task[None]
    driver: ComputeDriver
    hypervisor: Hypervisor

    @property
    def state(self) -> AgentState:
        return self.runner.state

    async def stop(self, *, snapshot: bool = True) -> None:
        """A graceful stop, or with `snapshot=False` what a crash leaves behind."""
        self.runner.request_stop()
        try:
            await self.task
        finally:
            await self.runner.close(snapshot=snapshot)
            await self.hypervisor.release(self.driver)


async def start_agent(
    cloud: Cloud, hypervisor: Hypervisor, ready_seconds: float = 20.0, **settings: Any
) -> Agent:
    """Start an agent process for HOST and wait until it has registered and reconciled."""
    registered = len(cloud.events("HostRegistered", HOST))
    config = AgentConfig(host=HOST, namespace=cloud.namespace, **settings)
    driver = await hypervisor.new_driver()
    await driver.connect()
    runner = ServiceRunner(definition(config, driver), cloud.settings, runner_config(config))
    await runner.start()
    agent = Agent(runner, asyncio.create_task(runner.serve()), driver, hypervisor)
    try:
        await cloud.wait_for("HostRegistered", HOST, count=registered + 1, seconds=ready_seconds)
    except BaseException:
        await agent.stop()
        raise
    return agent


@contextlib.asynccontextmanager
async def running_agent(
    cloud: Cloud, hypervisor: Hypervisor, **settings: Any
) -> AsyncIterator[Agent]:
    agent = await start_agent(cloud, hypervisor, **settings)
    try:
        yield agent
    finally:
        await agent.stop()


def types(cloud: Cloud, aggregate_id: str) -> list[str]:
    return [e.type for e in cloud.compute if e.aggregate_id == aggregate_id]


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
    from virga_compute.driver import DriverError

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
    # A heartbeat every tick, a usage sample only every few ticks.
    assert len(beats) >= 2 * len(samples)
    last = counted()[-1].payload
    assert (last.disk_write_bytes, last.memory_kb, last.host) == (4096, 128 * 1024, HOST)
    assert 0.4 < last.period_seconds < 1.5  # since the sample before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_the_agent_process_serves_health_and_stops_cleanly_on_sigterm(
    cloud: Cloud, kafka_bootstrap: str, tmp_path: Path
) -> None:
    port = _free_port()
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
