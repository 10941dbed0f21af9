"""A rebalance through the real broker, from the API to the agents and back.

The gateway, the scheduler (at most 2 migrations at once) and three compute agents (memory
drivers, each the others' peer) run on one namespace; the test answers the network steps as
the destinations' network agents would. Six instances run on hv-a (the other hosts were
disabled while they were placed); GET /v1/rebalance proposes moves off hv-a, POST executes
them as live migrations: the run ends FINISHED with every move made, each host runs two, and
the scheduler holds exactly one claim per instance (no destination hold left behind).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from tests.integration.compute.test_drain_through_api import (
    crowd_first_host,
    most_at_once,
    set_enabled,
    until_running,
)
from tests.integration.compute.test_migration_through_api import (
    compute_agents,
    network_responder,
    until,
)
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import following, serving

from virga_compute.core.spec import DomainState
from virga_eventlog import ensure_topics, event_topic, virga_topics
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka

HOSTS = ("hv-a", "hv-b", "hv-c")
AT_ONCE = 2


async def test_six_instances_on_one_host_are_rebalanced_two_per_host(
    kafka_bootstrap: str,
) -> None:
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1, drain_parallel=AT_ONCE)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        topic = event_topic("scheduler", namespace)
        async with (
            following(gateway.settings, topic, client_id=f"{namespace}-test") as decisions,
            compute_agents(gateway, HOSTS) as drivers,
            serving(scheduler, snapshot=False),
        ):
            responder = asyncio.create_task(network_responder(gateway, decisions))
            try:
                await wait_until(lambda: set(scheduler.state.migration_targets) == set(HOSTS), 60)
                await rebalances(gateway, scheduler, drivers, decisions)
            finally:
                responder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await responder
    finally:
        await gateway.close()


async def rebalances(
    gateway: Gateway, scheduler: ServiceRunner[Any], drivers: Any, decisions: Any
) -> None:
    projection = gateway.runner
    assert projection is not None
    token, ids = await crowd_first_host(gateway, 6)
    # A disabled host takes no move: nothing to propose while hv-b and hv-c are.
    idle = await gateway.call("GET", "/v1/rebalance")
    assert idle.status == 200, idle.body
    assert idle.body["moves"] == []
    await set_enabled(gateway, HOSTS[1:], True)
    await wait_until(lambda: all(projection.state.hosts[h].enabled for h in HOSTS), 30)

    proposed = await gateway.call("GET", "/v1/rebalance")
    assert proposed.status == 200, proposed.body
    moves = proposed.body["moves"]
    assert len(moves) == 4, proposed.body
    assert {m["source"] for m in moves} == {"hv-a"}
    assert sorted(m["destination"] for m in moves) == ["hv-b", "hv-b", "hv-c", "hv-c"]
    assert proposed.body["score_after"] < proposed.body["score_before"]
    assert proposed.body["last_run"] is None

    refused = await gateway.call("POST", "/v1/rebalance", token=token)
    assert refused.status == 403, refused.body
    asked = await gateway.call("POST", "/v1/rebalance")
    assert asked.status == 202, asked.body
    run_id = asked.body["id"]
    assert asked.body["status"] == "RUNNING"
    assert [m["instance_id"] for m in asked.body["moves"]] == [m["instance_id"] for m in moves]
    again = await gateway.call("POST", "/v1/rebalance")
    assert again.status == 202, again.body
    assert again.body["id"] == run_id  # one rebalance at a time: the running one answers

    seen: list[dict[str, Any]] = []

    async def finished() -> bool:
        reply = await gateway.call("GET", "/v1/rebalance")
        assert reply.status == 200, reply.body
        seen.append(reply.body["last_run"] or {})
        return bool(seen[-1].get("status") == "FINISHED")

    await until(finished, 120, seen)
    final = seen[-1]
    assert final["id"] == run_id
    assert sorted(final["moved"]) == sorted(m["instance_id"] for m in moves), final
    assert final["unmoved"] == final["skipped"] == final["moving"] == []
    assert most_at_once(decisions, run_id) == AT_ONCE

    views = await until_running(gateway, token, ids, set(HOSTS), 60)
    per_host = {h: sum(1 for v in views if v["host"] == h) for h in HOSTS}
    assert per_host == {"hv-a": 2, "hv-b": 2, "hv-c": 2}
    for view in views:
        info = await drivers[view["host"]].get_info(view["id"])
        assert info.state is DomainState.RUNNING
    for host in HOSTS:
        assert len(await drivers[host].list_instances()) == 2
    # One claim per instance, where it runs; no migration's hold on a destination is left.
    await wait_until(lambda: len(scheduler.state.claims) == len(ids), 30)
    claims = scheduler.state.claims.all()
    assert sorted(c.instance_id for c in claims) == sorted(ids)
    assert {c.instance_id: c.host for c in claims} == {v["id"]: v["host"] for v in views}
    listed = await gateway.call("GET", "/v1/hosts")
    allocated = {h["name"]: h["allocated"]["vcpus"] for h in listed.body["items"]}
    assert len(set(allocated.values())) == 1, allocated
    after = await gateway.call("GET", "/v1/rebalance")
    assert after.body["moves"] == [], after.body  # balanced: nothing more to propose
