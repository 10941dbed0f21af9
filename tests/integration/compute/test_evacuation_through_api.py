"""An evacuation through the real broker, from the API to the agents and back.

The gateway, the scheduler and two compute agents (memory drivers) run on one namespace; a
tiny responder in the test answers the fence as the storage service would and the port's
switch as the destination's network agent would. Host A's agent stops (its heartbeats stop:
A is marked down; its memory driver keeps the guest "running", as a QEMU whose agent died
would), `evacuate` rebuilds the instance on B (EVACUATING, then RUNNING there), and A's agent,
started again, removes its stale domain instead of running the guest: it runs exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.integration.compute.test_migration_through_api import instance, until
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
from virga_events.catalog.network import MigrationPortSwitched
from virga_events.catalog.scheduler import InstanceDisksFenceRequested, MigrationPortSwitchRequested
from virga_events.catalog.storage import InstanceDisksFenced
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka

A, B = "hv-a", "hv-b"


async def responder(gateway: Gateway, scheduler: list[Envelope]) -> None:
    """Answer each fence (as the storage service) and port switch (as the asked host's
    network agent)."""
    answered: set[str] = set()
    writer = EventWriter(gateway.settings, transactional_id=f"{gateway.namespace}-responder")
    await writer.start()
    try:
        while True:
            for envelope in list(scheduler):
                asked = envelope.payload
                if envelope.event_id in answered:
                    continue
                answer: Event
                if isinstance(asked, InstanceDisksFenceRequested):
                    answer = InstanceDisksFenced(flow_id=asked.flow_id, step=asked.step)
                    service, producer = "storage", "storage"
                elif isinstance(asked, MigrationPortSwitchRequested):
                    answer = MigrationPortSwitched(
                        flow_id=asked.flow_id, step=asked.step, host=asked.host
                    )
                    service, producer = "network", f"network@{asked.host}"
                else:
                    continue
                answered.add(envelope.event_id)
                reply = new_event(
                    answer,
                    aggregate_id=envelope.aggregate_id,
                    tenant_id=envelope.tenant_id,
                    producer=producer,
                    causation=envelope,
                )
                async with writer.transaction() as txn:
                    await txn.append(event_topic(service, gateway.namespace), reply)
            await asyncio.sleep(0.05)
    finally:
        await writer.stop()


@contextlib.asynccontextmanager
async def agent(gateway: Gateway, host: str, driver: MemoryComputeDriver) -> AsyncIterator[None]:
    config = ComputeConfig(
        host=host,
        rack="r1",
        zone="az1",
        namespace=gateway.namespace,
        heartbeat_seconds=1,
        power_sync_seconds=1,
    )
    runner = ServiceRunner(
        compute_definition(config, driver), gateway.settings, compute_runner_config(config)
    )
    async with serving(runner):
        yield


async def test_an_instance_of_a_down_host_is_rebuilt_on_the_other_and_runs_once(
    kafka_bootstrap: str,
) -> None:
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1, heartbeat_timeout_seconds=4)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        drivers = {A: MemoryComputeDriver(), B: MemoryComputeDriver()}
        for driver in drivers.values():
            await driver.connect()
        topic = event_topic("scheduler", namespace)
        async with (
            serving(scheduler),
            following(gateway.settings, topic, client_id=f"{namespace}-test") as decisions,
            agent(gateway, B, drivers[B]),
        ):
            answers = asyncio.create_task(responder(gateway, decisions))
            try:
                await evacuates_once(gateway, scheduler, drivers)
            finally:
                answers.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await answers
    finally:
        await gateway.close()


async def evacuates_once(
    gateway: Gateway, scheduler: ServiceRunner[Any], drivers: dict[str, MemoryComputeDriver]
) -> None:
    _, token = await gateway.tenant()
    views: list[dict[str, Any]] = []
    async with agent(gateway, A, drivers[A]):
        await wait_until(lambda: {A, B} <= set(scheduler.state.hosts), 60)
        # Only A takes it: B is disabled for the placement, then enabled again.
        disabled = await gateway.call("POST", f"/v1/hosts/{B}/actions", json={"action": "disable"})
        assert disabled.status in (200, 202), disabled.body
        instance_id = (await gateway.instance(token, flavor="m1.tiny"))["id"]

        async def status_is(status: str, host: str | None = None) -> bool:
            views.append(await instance(gateway, instance_id, token))
            return views[-1]["status"] == status and (host is None or views[-1]["host"] == host)

        await until(lambda: status_is("RUNNING", A), 60, views)
        enabled = await gateway.call("POST", f"/v1/hosts/{B}/actions", json={"action": "enable"})
        assert enabled.status in (200, 202), enabled.body
        actions = f"/v1/instances/{instance_id}/actions"
        up = await gateway.call("POST", actions, json={"action": "evacuate"})
        assert up.status == 409, up.body
        assert f"its host {A} is up" in up.body["detail"], up.body
    # A's agent is gone (its guest runs on in its driver): A is marked down.
    assert (await drivers[A].get_info(instance_id)).state is DomainState.RUNNING
    await wait_until(lambda: A in scheduler.state.down, 60)
    await wait_until(
        lambda: gateway.runner is not None and gateway.runner.state.hosts[A].state == "down", 30
    )
    actions = f"/v1/instances/{instance_id}/actions"
    tenant = await gateway.call("POST", actions, token=token, json={"action": "evacuate"})
    assert tenant.status == 403, tenant.body
    asked = await gateway.call("POST", actions, json={"action": "evacuate"})
    assert asked.status == 202, asked.body
    again = await gateway.call("POST", actions, json={"action": "evacuate"})
    assert again.status == 409, again.body
    views.clear()
    await until(lambda: status_is_on(gateway, instance_id, token, views, B), 60, views)
    assert "EVACUATING" in {view["status"] for view in views}
    assert (await drivers[B].get_info(instance_id)).state is DomainState.RUNNING
    held = [c for c in scheduler.state.claims.all() if c.instance_id.startswith(instance_id)]
    assert [(c.instance_id, c.host) for c in held] == [(instance_id, B)]  # one claim, on B

    # A's agent back: it finds the instance rebuilt elsewhere and removes its stale domain.
    async with agent(gateway, A, drivers[A]):
        await wait_until(lambda: not drivers[A].has_domain(domain_name(instance_id)), 30)
        await wait_until(lambda: A not in scheduler.state.down, 30)
        assert (await drivers[B].get_info(instance_id)).state is DomainState.RUNNING
        assert (await instance(gateway, instance_id, token))["host"] == B

    # The agents' reports and the scheduler's facts come on different topics: wait for all.
    kinds: list[str] = []

    async def history_has_all() -> bool:
        history = await gateway.call("GET", f"/v1/instances/{instance_id}/events", token=token)
        kinds[:] = [entry["type"] for entry in history.body]
        return set(EXPECTED) <= set(kinds)

    await until(history_has_all, 30, [{"history": kinds}])


EXPECTED = (
    "EvacuationRequested",
    "FlowStarted",
    "MigrationDestinationClaimed",
    "InstanceDisksFenceRequested",
    "InstanceDisksFenced",
    "MigrationPortSwitched",
    "InstanceRebuildRequested",
    "InstanceRebuilt",
    "MigrationClaimMoved",
    "FlowCompleted",
)


async def status_is_on(
    gateway: Gateway, instance_id: str, token: str, views: list[dict[str, Any]], host: str
) -> bool:
    views.append(await instance(gateway, instance_id, token))
    return bool(views[-1]["status"] == "RUNNING" and views[-1]["host"] == host)
