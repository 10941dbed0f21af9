"""A live migration's network steps as services on the real broker: the controller and two
hosts' agents (in-memory plumbing) answer the scheduler's requests, written by the test as the
scheduler's flow (`virga_scheduler.core.migration`) writes them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from tests.support.kafka import produce_events, read_events, serving

from virga_eventlog import KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_eventlog.topics import host_topic_spec
from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.network import (
    MigrationPortPlumbed,
    MigrationPortSwitched,
    NetworkCreated,
    NetworkRequested,
    PortBound,
    PortHostAssigned,
    PortUnbound,
    instance_port_id,
)
from virga_events.catalog.scheduler import (
    InstanceScheduled,
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
)
from virga_network.agent import service as agent_service
from virga_network.agent.config import NetworkAgentConfig
from virga_network.agent.core import names
from virga_network.agent.drivers.memory import MemoryNetworkDriver
from virga_network.config import NetworkConfig
from virga_network.service import definition
from virga_runtime import RunnerConfig, ServiceRunner

pytestmark = pytest.mark.kafka

HOSTS = {"hv-1": "192.0.2.1", "hv-2": "192.0.2.2"}
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)
FLOW = "flow-1"


def written(event: Event, aggregate: str, producer: str) -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t-1", producer=producer)


def of(kind: type[Event], host: str | None = None) -> Callable[[Envelope], bool]:
    return lambda e: isinstance(e.payload, kind) and getattr(e.payload, "host", host) == host


async def network_events(
    settings: KafkaSettings, done: Callable[[list[Envelope]], bool]
) -> list[Envelope]:
    """`<ns>.network` and every host's topic of it, once `done` holds."""
    topic = event_topic("network", settings.namespace)
    for _ in range(300):
        events = await read_events(settings.bootstrap_servers, topic, REGISTRY)
        if done(events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic} never got there: {[e.type for e in events]}")


def counted(kind: type[Event], host: str | None, at_least: int) -> Callable[[list[Envelope]], bool]:
    return lambda events: sum(map(of(kind, host), events)) >= at_least


async def test_the_agents_and_controller_answer_plumb_and_switch(kafka_bootstrap: str) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    family = event_topic("network", namespace)
    await ensure_topics(
        settings, [*virga_topics(3, namespace), *(host_topic_spec(family, h) for h in HOSTS)]
    )
    api, scheduler = event_topic("gateway", namespace), event_topic("scheduler", namespace)
    controller = ServiceRunner(definition(NetworkConfig(namespace=namespace)), settings,
                               RunnerConfig())  # fmt: skip
    drivers = {host: MemoryNetworkDriver() for host in HOSTS}
    agents = []
    for host, vtep in HOSTS.items():
        config = NetworkAgentConfig(
            host=host, vtep_ip=vtep, driver="memory", namespace=namespace, edge=False
        )
        runner = ServiceRunner(
            agent_service.definition(config, drivers[host]),
            settings,
            agent_service.runner_config(config),
        )
        agents.append(runner)
    tap = names.tap_name(instance_port_id("i-1"))
    async with serving(controller), serving(agents[0]), serving(agents[1]):
        network = written(NetworkRequested(name="n", cidr="10.9.0.0/24"), "net-1", "gateway")
        await produce_events(kafka_bootstrap, api, [network])
        await network_events(settings, lambda es: any(map(of(NetworkCreated), es)))
        booted = [
            written(InstanceRequested(name="web", flavor=TINY, network="net-1"), "i-1", "gateway")
        ]
        await produce_events(kafka_bootstrap, api, booted)
        placed = InstanceScheduled(host="hv-1", rack="r", zone="z", attempt=1, name="web",
                                   flavor=TINY, network="net-1")  # fmt: skip
        await produce_events(kafka_bootstrap, scheduler, [written(placed, "i-1", "scheduler")])
        await network_events(settings, counted(PortBound, "hv-1", 1))

        # plumb: hv-2 makes the tap, unbound, and says so; the binding stays on hv-1.
        plumb = MigrationPortPlumbRequested(flow_id=FLOW, step="plumb", host="hv-2")
        await produce_events(kafka_bootstrap, scheduler, [written(plumb, "i-1", "scheduler")])
        events = await network_events(settings, counted(MigrationPortPlumbed, "hv-2", 1))
        assert tap in drivers["hv-2"].taps
        assert tap in drivers["hv-1"].taps
        assert not any(map(of(PortBound, "hv-2"), events))
        [answer] = [e for e in events if of(MigrationPortPlumbed, "hv-2")(e)]
        assert answer.aggregate_id == "i-1"
        assert answer.producer == "network@hv-2"

        # switch_port: the controller moves the port; hv-2 binds, hv-1 unplugs, hv-2 answers.
        switch = MigrationPortSwitchRequested(
            flow_id=FLOW, step="switch_port", host="hv-2", source="hv-1"
        )
        await produce_events(kafka_bootstrap, scheduler, [written(switch, "i-1", "scheduler")])
        events = await network_events(settings, counted(MigrationPortSwitched, "hv-2", 1))
        assert any(map(of(PortHostAssigned, "hv-2"), events))
        assert any(map(of(PortBound, "hv-2"), events))
        await network_events(settings, counted(PortUnbound, "hv-1", 1))
        assert tap not in drivers["hv-1"].taps
        assert tap in drivers["hv-2"].taps

        # Re-sent (the flow's retry): answered again, the port moved once.
        await produce_events(kafka_bootstrap, scheduler, [written(switch, "i-1", "scheduler")])
        events = await network_events(settings, counted(MigrationPortSwitched, "hv-2", 2))
        assert sum(map(of(PortHostAssigned, "hv-2"), events)) == 1
        assert sum(map(of(MigrationPortPlumbed, "hv-2"), events)) == 1
