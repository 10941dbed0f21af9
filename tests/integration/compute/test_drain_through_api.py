"""A host drain through the real broker, from the API to the agents and back.

The gateway, the scheduler (at most 2 migrations at once) and three compute agents (memory
drivers, each the others' peer) run on one namespace; the test answers the network steps as
the destinations' network agents would. Four instances run on hv-a; POST
/v1/hosts/hv-a/actions {"action": "drain"} disables it and moves them all: each ends RUNNING
on hv-b or hv-c, hv-a runs nothing, the host's drain is DRAINED, and the scheduler never had
more than two of the drain's migrations running at once; and so again when the scheduler is
killed once the drain's first migration started (another one rebuilds it from the log).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from tests.integration.compute.test_migration_through_api import (
    compute_agents,
    instance,
    network_responder,
    until,
)
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import following, serving

from virga_compute.core.spec import DomainState
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_eventlog import ensure_topics, event_topic, virga_topics
from virga_events import Envelope
from virga_events.catalog.flows import FlowCompleted, FlowFailed, FlowStarted
from virga_events.catalog.scheduler import HostDrained, HostDrainFailed
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka

HOSTS = ("hv-a", "hv-b", "hv-c")
AT_ONCE = 2


def most_at_once(decisions: list[Envelope], drain_id: str) -> int:
    """The most migrations of the drain running at once, from the scheduler's own events in
    the order it wrote them (its hash chain's: the topic's partitions come interleaved)."""
    running: set[str] = set()
    most = 0
    for envelope in sorted(decisions, key=lambda e: e.seq):
        event = envelope.payload
        if isinstance(event, FlowStarted) and event.inputs.get("drain") == drain_id:
            running.add(envelope.aggregate_id)
            most = max(most, len(running))
        elif isinstance(event, (FlowCompleted, FlowFailed)):
            running.discard(envelope.aggregate_id)
    return most


@pytest.mark.parametrize("killed", [False, True], ids=["live", "scheduler-killed"])
async def test_a_drain_moves_every_instance_off_the_host_two_at_a_time(
    kafka_bootstrap: str, killed: bool
) -> None:
    """Also with the scheduler killed (no final snapshot) once the drain's first migration
    started, and another one started in its place: it rebuilds the drain from the log."""
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1, drain_parallel=AT_ONCE)

        def scheduler() -> ServiceRunner[Any]:
            return ServiceRunner(
                scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
            )

        first = scheduler()
        topic = event_topic("scheduler", namespace)
        async with (
            contextlib.AsyncExitStack() as running,
            following(gateway.settings, topic, client_id=f"{namespace}-test") as decisions,
            compute_agents(gateway, HOSTS) as drivers,
        ):
            await running.enter_async_context(serving(first, snapshot=False))
            responder = asyncio.create_task(network_responder(gateway, decisions))

            async def kill_and_replace() -> None:
                await running.aclose()
                await running.enter_async_context(serving(scheduler()))

            try:
                await wait_until(lambda: set(first.state.migration_targets) == set(HOSTS), 60)
                await drains(gateway, drivers, decisions, kill_and_replace if killed else None)
            finally:
                responder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await responder
    finally:
        await gateway.close()


async def host_view(gateway: Gateway, name: str) -> dict[str, Any]:
    listed = await gateway.call("GET", "/v1/hosts")
    assert listed.status == 200, listed.body
    (view,) = [h for h in listed.body["items"] if h["name"] == name]
    return dict(view)


async def crowd_first_host(gateway: Gateway, count: int) -> tuple[str, list[str]]:
    """A new tenant's `count` instances, all RUNNING on the first of HOSTS (the others are
    disabled while they are placed, and stay so): (its token, their ids)."""
    projection = gateway.runner
    assert projection is not None
    await wait_until(
        lambda: all(
            projection.state.hosts.get(h) is not None
            and projection.state.hosts[h].receives_migrations
            for h in HOSTS
        ),
        60,
    )
    await set_enabled(gateway, HOSTS[1:], False)
    _, token = await gateway.tenant()
    ids = [(await gateway.instance(token, flavor="m1.tiny"))["id"] for _ in range(count)]
    await until_running(gateway, token, ids, {HOSTS[0]}, 90)
    return token, ids


async def until_running(
    gateway: Gateway, token: str, ids: list[str], where: set[str], seconds: float
) -> list[dict[str, Any]]:
    """The instances' views once each is RUNNING on a host of `where`."""
    views: list[dict[str, Any]] = []

    async def all_running() -> bool:
        views[:] = [await instance(gateway, i, token) for i in ids]
        return all(v["status"] == "RUNNING" and v["host"] in where for v in views)

    await until(all_running, seconds, views)
    return views


async def set_enabled(gateway: Gateway, hosts: tuple[str, ...], enabled: bool) -> None:
    action = "enable" if enabled else "disable"
    for host in hosts:
        done = await gateway.call("POST", f"/v1/hosts/{host}/actions", json={"action": action})
        assert done.status == 202, done.body


async def drains(
    gateway: Gateway,
    drivers: dict[str, MemoryComputeDriver],
    decisions: list[Envelope],
    restart: Callable[[], Awaitable[None]] | None,
) -> None:
    token, ids = await crowd_first_host(gateway, 4)
    await set_enabled(gateway, HOSTS[1:], True)

    # Tenants may not drain a host; admins may.
    path = "/v1/hosts/hv-a/actions"
    refused = await gateway.call("POST", path, token=token, json={"action": "drain"})
    assert refused.status == 403, refused.body
    asked = await gateway.call("POST", path, json={"action": "drain"})
    assert asked.status == 202, asked.body
    assert asked.body["enabled"] is False
    drain_id = asked.body["drain"]["id"]
    assert asked.body["drain"]["status"] == "DRAINING"
    if restart is not None:
        await wait_until(lambda: most_at_once(decisions, drain_id) >= 1, 60)
        ended = (HostDrained, HostDrainFailed)
        assert not any(isinstance(e.payload, ended) for e in decisions), "ended before the kill"
        await restart()
    again = await gateway.call("POST", path, json={"action": "drain"})
    assert again.status == 202, again.body
    assert again.body["drain"]["id"] == drain_id, again.body

    seen: list[dict[str, Any]] = []
    most_moving = 0

    async def drained() -> bool:
        nonlocal most_moving
        seen.append(await host_view(gateway, "hv-a"))
        most_moving = max(most_moving, len(seen[-1]["drain"]["moving"]))
        return bool(seen[-1]["drain"]["status"] != "DRAINING")

    await until(drained, 120, seen)
    final = seen[-1]["drain"]
    assert final["status"] == "DRAINED", final
    assert sorted(final["moved"]) == sorted(final["instances"]) == sorted(ids)
    assert final["unmoved"] == []
    assert final["moving"] == []
    assert seen[-1]["allocated"]["vcpus"] == 0
    assert most_moving <= AT_ONCE
    assert most_at_once(decisions, drain_id) == AT_ONCE

    views = await until_running(gateway, token, ids, {"hv-b", "hv-c"}, 60)
    assert await drivers["hv-a"].list_instances() == []
    for view in views:
        info = await drivers[view["host"]].get_info(view["id"])
        assert info.state is DomainState.RUNNING
