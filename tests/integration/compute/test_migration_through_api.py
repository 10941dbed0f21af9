"""A live migration through the real broker, from the API to the agents and back.

The gateway, the scheduler and two compute agents (memory drivers that are each other's
peers) run on one namespace; a tiny responder in the test answers the network steps as the
destination's network agent would (MigrationPortPlumbed, MigrationPortSwitched). POST
/v1/instances/{id}/migrate moves a running instance: it is MIGRATING, then RUNNING on the other
host, the destination's agent owns it (a deletion destroys it there) and the history shows
the flow.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import following, serving

from virga_compute.config import ComputeConfig
from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.service import definition as compute_definition
from virga_compute.service import runner_config as compute_runner_config
from virga_eventlog import EventWriter, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog.network import MigrationPortPlumbed, MigrationPortSwitched
from virga_events.catalog.scheduler import (
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
)
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka

HOSTS = ("hv-a", "hv-b")


def uri(host: str) -> str:
    return f"memory://{host}"


async def network_responder(gateway: Gateway, scheduler: list[Envelope]) -> None:
    """Answer each plumb and switch request as the asked host's network agent would (on the
    network family's topic: the test writes as every agent)."""
    answered: set[str] = set()
    writer = EventWriter(gateway.settings, transactional_id=f"{gateway.namespace}-responder")
    await writer.start()
    try:
        await _respond(writer, gateway.namespace, scheduler, answered)
    finally:
        await writer.stop()


async def _respond(
    writer: EventWriter, namespace: str, scheduler: list[Envelope], answered: set[str]
) -> None:
    while True:
        for envelope in list(scheduler):
            asked = envelope.payload
            if envelope.event_id in answered:
                continue
            answer: Event
            if isinstance(asked, MigrationPortPlumbRequested):
                answer = MigrationPortPlumbed(
                    flow_id=asked.flow_id, step=asked.step, host=asked.host
                )
            elif isinstance(asked, MigrationPortSwitchRequested):
                answer = MigrationPortSwitched(
                    flow_id=asked.flow_id, step=asked.step, host=asked.host
                )
            else:
                continue
            answered.add(envelope.event_id)
            reply = new_event(
                answer,
                aggregate_id=envelope.aggregate_id,
                tenant_id=envelope.tenant_id,
                producer=f"network@{asked.host}",
                causation=envelope,
            )
            async with writer.transaction() as txn:
                await txn.append(event_topic("network", namespace), reply)
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def compute_agents(
    gateway: Gateway, hosts: tuple[str, ...] = HOSTS
) -> AsyncIterator[dict[str, MemoryComputeDriver]]:
    """A compute agent per host on memory drivers, each driver the others' migration peer."""
    drivers = {host: MemoryComputeDriver() for host in hosts}
    for host, driver in drivers.items():
        for peer, other in drivers.items():
            if peer != host:
                driver.add_peer(uri(peer), other)
    async with contextlib.AsyncExitStack() as stack:
        for host, driver in drivers.items():
            config = ComputeConfig(
                host=host,
                rack="r1",
                zone="az1",
                namespace=gateway.namespace,
                migration_uri=uri(host),
                heartbeat_seconds=2,
                power_sync_seconds=1,
            )
            await driver.connect()
            runner = ServiceRunner(
                compute_definition(config, driver), gateway.settings, compute_runner_config(config)
            )
            await stack.enter_async_context(serving(runner))
        yield drivers


async def instance(gateway: Gateway, instance_id: str, token: str) -> dict[str, Any]:
    reply = await gateway.call("GET", f"/v1/instances/{instance_id}", token=token)
    if reply.status == 404:  # deleted, and forgotten
        return {"id": instance_id, "status": "DELETED", "host": None}
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.body
    return body


async def test_a_running_instance_moves_to_the_other_host_through_the_api(
    kafka_bootstrap: str,
) -> None:
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        topic = event_topic("scheduler", namespace)
        async with (
            serving(scheduler),
            following(gateway.settings, topic, client_id=f"{namespace}-test") as decisions,
            compute_agents(gateway) as drivers,
        ):
            responder = asyncio.create_task(network_responder(gateway, decisions))
            try:
                # Both hosts known to the scheduler too (it finds new hosts' topics).
                await wait_until(lambda: set(scheduler.state.migration_targets) == set(HOSTS), 60)
                await moves_and_is_owned_by_the_destination(gateway, drivers)
            finally:
                responder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await responder
    finally:
        await gateway.close()


async def moves_and_is_owned_by_the_destination(
    gateway: Gateway, drivers: dict[str, MemoryComputeDriver]
) -> None:
    state = gateway.runner
    assert state is not None
    await wait_until(
        lambda: all(
            state.state.hosts.get(h) is not None and state.state.hosts[h].receives_migrations
            for h in HOSTS
        ),
        60,
    )
    _, token = await gateway.tenant()
    created = await gateway.instance(token, flavor="m1.tiny")
    instance_id = created["id"]
    views: list[dict[str, Any]] = []

    async def status_is(status: str, host: str | None = None) -> bool:
        views.append(await instance(gateway, instance_id, token))
        return views[-1]["status"] == status and (host is None or views[-1]["host"] == host)

    await until(lambda: status_is("RUNNING"), 60, views)
    source = views[-1]["host"]
    destination = next(h for h in HOSTS if h != source)
    views.clear()

    # Tenants may not move guests; admins may.
    path = f"/v1/instances/{instance_id}/migrate"
    refused = await gateway.call("POST", path, token=token, json={"host": destination})
    assert refused.status == 403, refused.body
    asked = await gateway.call("POST", path, json={"host": destination})
    assert asked.status == 202, asked.body
    flow_id = asked.body["flow_id"]
    again = await gateway.call("POST", path, json={})
    assert again.status == 409, again.body

    await until(lambda: status_is("RUNNING", destination), 60, views)
    statuses = {view["status"] for view in views}
    assert (await drivers[destination].get_info(instance_id)).state is DomainState.RUNNING
    assert not drivers[source].has_domain(domain_name(instance_id))

    history = await gateway.call("GET", f"/v1/instances/{instance_id}/events", token=token)
    kinds = [entry["type"] for entry in history.body]
    for kind in (
        "LiveMigrationRequested",
        "FlowStarted",
        "MigrationDestinationClaimed",
        "MigrationPortPlumbed",
        "InstanceMigrationRequested",
        "InstanceMigrated",
        "MigrationPortSwitched",
        "MigrationClaimMoved",
        "FlowCompleted",
    ):
        assert kind in kinds, kinds
    (migrated,) = [e for e in history.body if e["type"] == "InstanceMigrated"]
    assert (migrated["payload"]["flow_id"], migrated["payload"]["host"]) == (flow_id, source)
    # Polled every 50 ms, it showed MIGRATING between RUNNING on one host and on the other
    # (the flow takes several round trips through the log).
    assert statuses == {"RUNNING", "MIGRATING"}

    # Back again, asked as the action: `live-migrate` on the actions route.
    actions = f"/v1/instances/{instance_id}/actions"
    refused = await gateway.call("POST", actions, token=token, json={"action": "live-migrate"})
    assert refused.status == 403, refused.body
    stray = await gateway.call("POST", actions, json={"action": "reboot", "host": source})
    assert stray.status == 422, stray.body
    assert stray.body["errors"][0]["field"] == "host", stray.body
    back = await gateway.call("POST", actions, json={"action": "live-migrate", "host": source})
    assert back.status == 202, back.body
    assert back.body["id"] == instance_id, back.body
    await until(lambda: status_is("RUNNING", source), 60, views)
    assert (await drivers[source].get_info(instance_id)).state is DomainState.RUNNING
    assert not drivers[destination].has_domain(domain_name(instance_id))

    # The agent it moved to owns it now: a deletion destroys it there.
    deleted = await gateway.call("DELETE", f"/v1/instances/{instance_id}", token=token)
    assert deleted.status == 202, deleted.body
    await until(lambda: status_is("DELETED"), 60, views)
    assert not drivers[source].has_domain(domain_name(instance_id))


async def until(check: Any, seconds: float, seen: list[dict[str, Any]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not reached; last seen: {seen[-1:]}")
        await asyncio.sleep(0.05)
