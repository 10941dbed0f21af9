"""The compute agent under test as its own service on the test broker: the hypervisors it
may drive, the log around it (`Cloud`), and starting and stopping agents."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import libvirt
from aiokafka import AIOKafkaProducer

from virga_compute.config import ComputeConfig
from virga_compute.core.model import ComputeState
from virga_compute.core.spec import DomainState, InstanceSpec
from virga_compute.drivers.base import ComputeDriver
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.service import definition, runner_config
from virga_eventlog import (
    KafkaSettings,
    event_topic,
)
from virga_events import Envelope, Event, encode, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime import ServiceRunner

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


class CountingDriver(MemoryComputeDriver):
    """Remembers every spawn asked of it, to prove one never happened."""

    def __init__(self) -> None:
        super().__init__()
        self.spawned: list[str] = []

    async def spawn(self, spec: InstanceSpec, *, start: bool = True) -> None:
        self.spawned.append(spec.instance_id)
        await super().spawn(spec, start=start)


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


def remove_virga_domains(conn: Any) -> None:
    for dom in conn.listAllDomains(0):
        if dom.name().startswith("virga-"):
            if dom.isActive():
                dom.destroy()
            dom.undefine()


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

    async def schedule(
        self,
        instance_id: str,
        host: str = HOST,
        *,
        image: str | None = None,
        network: str | None = None,
    ) -> Envelope:
        return await self.write(
            "scheduler", placement(instance_id, host, image=image, network=network)
        )

    async def act(self, instance_id: str, action: str) -> Envelope:
        event = InstanceActionRequested(action=action)  # type: ignore[arg-type]
        return await self.write("gateway", request_event(event, instance_id, "gateway"))

    async def delete(self, instance_id: str) -> Envelope:
        event = InstanceDeletionRequested()
        return await self.write("gateway", request_event(event, instance_id, "gateway"))

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


def placement(
    instance_id: str, host: str = HOST, *, image: str | None = None, network: str | None = None
) -> Envelope:
    event = InstanceScheduled(
        host=host,
        rack="r1",
        zone="z1",
        attempt=1,
        name=instance_id,
        flavor=TINY,
        image=image,
        network=network,
    )
    return request_event(event, instance_id, "scheduler")


def request_event(event: Event, instance_id: str, producer: str) -> Envelope:
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer=producer)


async def wait_until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        if loop.time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


# -- the agent ---------------------------------------------------------------------------------


@dataclass
class Agent:
    runner: ServiceRunner[ComputeState]
    task: asyncio.Task[None]
    driver: ComputeDriver
    hypervisor: Hypervisor

    @property
    def state(self) -> ComputeState:
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
    config = ComputeConfig(host=HOST, namespace=cloud.namespace, **settings)
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
