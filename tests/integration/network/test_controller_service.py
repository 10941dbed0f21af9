"""The network controller as a running service on the real broker: restarts, crashes included,
never hand out an address, MAC or VXLAN id twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from tests.support.kafka import produce_events, read_events, serving

from virga_eventlog import KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog.network import (
    NetworkCreated,
    NetworkRequested,
    PortAllocated,
    PortDeleted,
    PortDeletionRequested,
    PortRequested,
)
from virga_network.config import NetworkConfig
from virga_network.core.model import NetworkState
from virga_network.service import definition
from virga_runtime import RunnerConfig, ServiceRunner

pytestmark = pytest.mark.kafka


def request(event: Event, aggregate: str) -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t-1", producer="gateway")


async def network_events(
    bootstrap: str, settings: KafkaSettings, done: Callable[[list[Envelope]], bool]
) -> list[Envelope]:
    topic = event_topic("network", settings.namespace)
    for _ in range(200):
        events = await read_events(bootstrap, topic, REGISTRY)
        if done(events):
            return events
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic} never got there: {[e.type for e in events]}")


async def wait_until(predicate: Callable[[], bool], seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def count(kind: type[Event]) -> Callable[[list[Envelope]], int]:
    return lambda events: sum(isinstance(e.payload, kind) for e in events)


async def test_restarts_and_crashes_never_hand_out_an_address_twice(kafka_bootstrap: str) -> None:
    namespace = f"t{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(3, namespace))
    api = event_topic("gateway", namespace)
    config = NetworkConfig(namespace=namespace)

    def controller() -> ServiceRunner[NetworkState]:
        return ServiceRunner(definition(config), settings, RunnerConfig())

    allocated = count(PortAllocated)
    ports = [f"port-{i:03}" for i in range(90)]
    networks = [
        request(NetworkRequested(name="a", cidr="10.7.0.0/24"), "net-a"),
        request(NetworkRequested(name="b", cidr="fd00:7::/64"), "net-b"),
    ]
    async with serving(controller(), snapshot=False):  # then it "crashes": no snapshot
        # As the gateway does, ports are asked for once their network exists: the two
        # requests may sit in different partitions, decided in either order.
        await produce_events(kafka_bootstrap, api, networks)
        await network_events(kafka_bootstrap, settings, lambda es: count(NetworkCreated)(es) == 2)
        first = [request(PortRequested(network_id="net-a"), p) for p in ports[:30]]
        await produce_events(kafka_bootstrap, api, first)
        await network_events(kafka_bootstrap, settings, lambda es: allocated(es) >= 30)
    await produce_events(
        kafka_bootstrap, api, [request(PortRequested(network_id="net-a"), p) for p in ports[30:60]]
    )
    async with serving(controller()):  # rebuilt from the log alone; stops with a snapshot
        await network_events(kafka_bootstrap, settings, lambda es: allocated(es) >= 60)
    freed = ports[:10]
    last_inputs = [
        *(request(PortDeletionRequested(), p) for p in freed),
        *(request(PortRequested(network_id="net-b"), p) for p in ports[60:70]),
        *(request(PortRequested(network_id="net-a"), p) for p in ports[70:90]),
        # Repeats of requests already decided: they decide nothing.
        *(request(PortRequested(network_id="net-a"), p) for p in ports[20:25]),
    ]
    await produce_events(kafka_bootstrap, api, last_inputs)
    restored = controller()
    async with serving(restored):  # restored from the snapshot, then the log after it
        events = await network_events(kafka_bootstrap, settings, lambda es: allocated(es) >= 90)
        # Anything decided twice shows once every input since the snapshot, the repeats
        # included, has been decided and committed (the counter moves only after the commit).
        await wait_until(lambda: restored.metrics.value("events_handled") >= len(last_inputs))
        events = await network_events(kafka_bootstrap, settings, lambda es: True)

    created = [e.payload for e in events if isinstance(e.payload, NetworkCreated)]
    assert sorted(c.vni for c in created) == [1000, 1001]
    allocations = {
        e.aggregate_id: e.payload for e in events if isinstance(e.payload, PortAllocated)
    }
    assert len([e for e in events if isinstance(e.payload, PortAllocated)]) == 90
    assert sorted(allocations) == ports
    assert {e.aggregate_id for e in events if isinstance(e.payload, PortDeleted)} == set(freed)
    live = {p: a for p, a in allocations.items() if p not in freed}
    addresses = [a.ips[0] for a in live.values()]
    assert len(set(addresses)) == len(addresses) == 80
    assert len({a.mac for a in allocations.values()}) == 90
    # Upwards from the highest address ever given: freed addresses wait for the pool to wrap.
    last = sorted(int(allocations[p].ips[0].rsplit(".", 1)[1]) for p in ports[70:90])
    assert last == list(range(62, 82))
    assert not {allocations[p].ips[0] for p in freed} & set(addresses)
    on_b = sorted(a.ips[0] for a in live.values() if a.network_id == "net-b")
    assert on_b[:2] == ["fd00:7::2", "fd00:7::3"]
