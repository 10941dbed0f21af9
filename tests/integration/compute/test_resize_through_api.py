"""A cold resize through the real broker, from the API to the agents and back.

The gateway, the scheduler and two compute agents (memory drivers) run on one namespace.
POST /v1/instances/{id}/actions {"action": "resize"} grows a running instance in place: it
is RESIZING, then RUNNING with the new flavor, its domain defined with the new vCPUs and
memory, one claim of the new size held; a stopped one stays stopped. A flavor whose disk is
smaller is 422 naming `flavor`. A resize its host has no room for moves hosts: it ends
RUNNING on the other host with the new flavor, nothing of it is left on the first, and it
holds one claim.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.integration.compute.test_migration_through_api import (
    HOSTS,
    compute_agents,
    instance,
    until,
)
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import serving

from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_eventlog import ensure_topics, virga_topics
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.resize import resize_claim_id
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = pytest.mark.kafka


async def test_an_instance_is_resized_in_place_running_and_stopped(kafka_bootstrap: str) -> None:
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        async with serving(scheduler), compute_agents(gateway) as drivers:
            await wait_until(lambda: set(scheduler.state.hosts) == set(HOSTS), 60)
            _, token = await gateway.tenant()
            _, other = await gateway.tenant()
            created = await gateway.instance(token, flavor="m1.tiny")
            instance_id = created["id"]
            views: list[dict[str, Any]] = []

            async def status_is(status: str, flavor: str | None = None) -> bool:
                views.append(await instance(gateway, instance_id, token))
                seen = views[-1]
                named = seen["flavor"]["name"] if seen["flavor"] else None
                return seen["status"] == status and (flavor is None or named == flavor)

            await until(lambda: status_is("RUNNING"), 60, views)
            host = views[-1]["host"]
            views.clear()
            actions = f"/v1/instances/{instance_id}/actions"

            # Another tenant does not see it; a flavor nobody has is named.
            hidden = await gateway.call(
                "POST", actions, token=other, json={"action": "resize", "flavor": "m1.small"}
            )
            assert hidden.status == 404, hidden.body
            unknown = await gateway.call(
                "POST", actions, token=token, json={"action": "resize", "flavor": "m9.none"}
            )
            assert unknown.status == 422, unknown.body
            assert unknown.body["errors"][0]["field"] == "flavor", unknown.body

            asked = await gateway.call(
                "POST", actions, token=token, json={"action": "resize", "flavor": "m1.small"}
            )
            assert asked.status == 202, asked.body
            await until(lambda: status_is("RUNNING", "m1.small"), 60, views)
            assert "RESIZING" in {view["status"] for view in views}
            assert views[-1]["host"] == host
            assert drivers[host].defined_size(instance_id) == (1, 2048)
            await wait_until(lambda: scheduler.state.claims.get(instance_id) is not None, 10)
            held = scheduler.state.claims.get(instance_id)
            assert held is not None
            assert (held.host, held.ram_mb) == (host, 2048)
            assert not [f for f in scheduler.state.flows.running() if f.subject == instance_id]
            history = await gateway.call("GET", f"/v1/instances/{instance_id}/events", token=token)
            kinds = [entry["type"] for entry in history.body]
            for kind in (
                "InstanceResizeRequested",
                "ResizeClaimed",
                "InstanceResizeStopped",
                "BootVolumeGrown",
                "InstanceResized",
                "ResizeClaimMoved",
                "FlowCompleted",
            ):
                assert kind in kinds, kinds

            # A smaller disk never: 422 naming the flavor, and nothing starts.
            smaller = await gateway.call(
                "POST", actions, token=token, json={"action": "resize", "flavor": "m1.tiny"}
            )
            assert smaller.status == 422, smaller.body
            assert smaller.body["errors"][0]["field"] == "flavor", smaller.body

            # Stopped, it is resized and stays stopped.
            stop = await gateway.call("POST", actions, token=token, json={"action": "stop"})
            assert stop.status == 202, stop.body
            await until(lambda: status_is("STOPPED"), 60, views)
            asked = await gateway.call(
                "POST", actions, token=token, json={"action": "resize", "flavor": "m1.medium"}
            )
            assert asked.status == 202, asked.body
            await until(lambda: status_is("STOPPED", "m1.medium"), 60, views)
            assert drivers[host].defined_size(instance_id) == (2, 4096)
            await wait_until(
                lambda: (
                    (c := scheduler.state.claims.get(instance_id)) is not None and c.ram_mb == 4096
                ),
                10,
            )
            leftovers = [
                key
                for flow in scheduler.state.flows.flows.values()
                if scheduler.state.claims.get(key := resize_claim_id(instance_id, flow.flow_id))
            ]
            assert leftovers == []
    finally:
        await gateway.close()


async def test_a_resize_its_host_has_no_room_for_moves_the_instance(kafka_bootstrap: str) -> None:
    first, second = HOSTS
    gateway = await Gateway.create(kafka_bootstrap)
    try:
        namespace = gateway.namespace
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        async with serving(scheduler), compute_agents(gateway, (first,)) as drivers:
            await wait_until(lambda: set(scheduler.state.hosts) == {first}, 60)
            _, token = await gateway.tenant()
            # Only the first host is up: the instance (20 GB) and a filler (80 GB) fill its
            # 100 GB disk.
            instance_id = (await gateway.instance(token, flavor="m1.small"))["id"]
            filler = (await gateway.instance(token, name="filler", flavor="m1.large"))["id"]
            views: list[dict[str, Any]] = []

            async def status_is(which: str, status: str, flavor: str | None = None) -> bool:
                views.append(await instance(gateway, which, token))
                seen = views[-1]
                named = seen["flavor"]["name"] if seen["flavor"] else None
                return seen["status"] == status and (flavor is None or named == flavor)

            await until(lambda: status_is(filler, "RUNNING"), 60, views)
            await until(lambda: status_is(instance_id, "RUNNING"), 60, views)
            assert views[-1]["host"] == first
            async with compute_agents(gateway, (second,)) as more:
                drivers = {**drivers, **more}
                await wait_until(lambda: set(scheduler.state.hosts) == set(HOSTS), 60)
                views.clear()
                asked = await gateway.call(
                    "POST",
                    f"/v1/instances/{instance_id}/actions",
                    token=token,
                    json={"action": "resize", "flavor": "m1.medium"},
                )
                assert asked.status == 202, asked.body
                await until(lambda: status_is(instance_id, "RUNNING", "m1.medium"), 60, views)
                assert "RESIZING" in {view["status"] for view in views}
                assert views[-1]["host"] == second
                assert drivers[second].defined_size(instance_id) == (2, 4096)
                info = await drivers[second].get_info(instance_id)
                assert info.state is DomainState.RUNNING
                # The first host's stopped domain goes once the claim moved: never started.
                await wait_until(
                    lambda: not drivers[first].has_domain(domain_name(instance_id)), 30
                )
                await wait_until(
                    lambda: (
                        (c := scheduler.state.claims.get(instance_id)) is not None
                        and c.host == second
                    ),
                    10,
                )
                held = scheduler.state.claims.get(instance_id)
                assert held is not None
                assert (held.host, held.ram_mb) == (second, 4096)
                assert scheduler.state.claims.usage_of(first).ram_mb == 8192  # the filler's
                assert not [f for f in scheduler.state.flows.running() if f.subject == instance_id]
                leftovers = [
                    key
                    for flow in scheduler.state.flows.flows.values()
                    if scheduler.state.claims.get(key := resize_claim_id(instance_id, flow.flow_id))
                ]
                assert leftovers == []
                history = await gateway.call(
                    "GET", f"/v1/instances/{instance_id}/events", token=token
                )
                kinds = [entry["type"] for entry in history.body]
                assert "InstanceResized" in kinds, kinds
                assert "ResizeClaimMoved" in kinds, kinds
    finally:
        await gateway.close()
