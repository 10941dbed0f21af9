"""A live migration whose source or destination compute agent is killed at each phase.

The gateway, the scheduler and two compute agents (memory drivers, each the other's peer: the
hypervisors outlive their agents) run on one namespace shared by the module; the test answers
the network steps as the destination's network agent would, and holds an answer back to stop
the flow at a phase. At each phase one agent is killed as SIGKILL would leave it (its serve
loop cancelled, its in-flight effects abandoned, nothing more written: no outcome, no
snapshot, no lease released) and another started in its place. Whatever the phase, the flow
completes, the guest runs on exactly one hypervisor (the destination's), the instance is
RUNNING there and owned by its agent (a deletion destroys it there), and `audit check` finds
nothing: no leaked claim, one claim per instance. Killed during `migrate`, the source's new
agent carries the step out again from its journal: the guest still at the source moves; one
the hypervisors moved while no agent ran is found at the destination.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from tests.integration.compute.test_migration_through_api import instance, until, uri
from tests.integration.gateway.harness import Gateway, wait_until
from tests.support.kafka import following, serving

from virga_audit.check import check
from virga_compute.config import ComputeConfig
from virga_compute.core.model import ComputeState
from virga_compute.core.spec import DomainState
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.service import definition as compute_definition
from virga_compute.service import runner_config as compute_runner_config
from virga_eventlog import EventWriter, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.network import MigrationPortPlumbed, MigrationPortSwitched
from virga_events.catalog.scheduler import (
    InstanceMigrationRequested,
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
)
from virga_runtime import ServiceRunner
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.service import definition as scheduler_definition
from virga_scheduler.service import runner_config as scheduler_runner_config

pytestmark = [pytest.mark.kafka, pytest.mark.asyncio(loop_scope="module")]

HOSTS = ("hv-a", "hv-b")
LEASE_SECONDS = 2.0
"""The agents' host lease: a killed agent's successor (same pid) waits out half of it."""


class Hypervisor(MemoryComputeDriver):
    """A memory hypervisor that says when a live migration has started on it."""

    def __init__(self) -> None:
        super().__init__()
        self.migrating = asyncio.Event()
        self.migrations = 0
        """How many times an agent asked it to migrate a guest live."""

    async def migrate_live(self, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        self.migrating.set()
        self.migrations += 1
        return await super().migrate_live(instance_id, *args, **kwargs)

    def finish_outside(self, instance_id: str, peer: MemoryComputeDriver) -> None:
        """The job the killed agent started completes in the hypervisors all the same."""
        name = domain_name(instance_id)
        peer._domains[name] = self._domains.pop(name)


@dataclass
class Stack:
    gateway: Gateway
    decisions: list[Envelope]
    drivers: dict[str, Hypervisor]
    agents: dict[str, tuple[ServiceRunner[ComputeState], asyncio.Task[None]]] = field(
        default_factory=dict
    )
    held: set[type[Event]] = field(default_factory=set)
    """Requests the network responder leaves unanswered until released."""

    async def start(self, host: str) -> None:
        config = ComputeConfig(
            host=host,
            rack="r1",
            zone="az1",
            namespace=self.gateway.namespace,
            migration_uri=uri(host),
            heartbeat_seconds=1,
            power_sync_seconds=1,
            host_lease_seconds=LEASE_SECONDS,
        )
        definition = compute_definition(config, self.drivers[host])
        runner = ServiceRunner(definition, self.gateway.settings, compute_runner_config(config))
        await runner.start()
        task = asyncio.create_task(runner.serve())
        self.agents[host] = (runner, task)
        await asyncio.wait_for(runner.ready.wait(), 30)

    async def kill(self, host: str) -> None:
        """As SIGKILL leaves it: nothing more written, effects in flight abandoned."""
        runner, task = self.agents.pop(host)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        async def nothing(snapshot: bool) -> None:
            return None

        runner._final_writes = nothing  # type: ignore[method-assign]
        await runner.close(snapshot=False)

    async def stop_all(self) -> None:
        for host in list(self.agents):
            runner, task = self.agents.pop(host)
            runner.request_stop()
            await task
            await runner.close()

    def seen(self, kind: type[Event], flow_id: str | None = None) -> bool:
        return any(
            isinstance(e.payload, kind)
            and (flow_id is None or getattr(e.payload, "flow_id", e.aggregate_id) == flow_id)
            for e in self.decisions
        )

    def ended(self, flow_id: str) -> Envelope | None:
        ends = (FlowCompleted, FlowFailed)
        found = [e for e in self.decisions if isinstance(e.payload, ends)]
        return next((e for e in found if e.aggregate_id == flow_id), None)

    async def respond(self) -> None:
        """Answer each plumb and switch request not held, as the asked host's network agent."""
        gateway, answered = self.gateway, set[str]()
        writer = EventWriter(gateway.settings, transactional_id=f"{gateway.namespace}-responder")
        await writer.start()
        try:
            while True:
                for envelope in list(self.decisions):
                    asked = envelope.payload
                    if envelope.event_id in answered or type(asked) in self.held:
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
                        await txn.append(event_topic("network", gateway.namespace), reply)
                await asyncio.sleep(0.05)
        finally:
            await writer.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(kafka_bootstrap: str) -> AsyncIterator[Stack]:
    gateway = await Gateway.create(kafka_bootstrap)
    namespace = gateway.namespace
    try:
        await ensure_topics(gateway.settings, virga_topics(3, namespace))
        config = SchedulerConfig(namespace=namespace, tick_seconds=1)
        scheduler = ServiceRunner(
            scheduler_definition(config), gateway.settings, scheduler_runner_config(config)
        )
        topic = event_topic("scheduler", namespace)
        drivers = {host: Hypervisor() for host in HOSTS}
        for host, driver in drivers.items():
            for peer, other in drivers.items():
                if peer != host:
                    driver.add_peer(uri(peer), other)
            await driver.connect()
        async with (
            serving(scheduler),
            following(gateway.settings, topic, client_id=f"{namespace}-test") as decisions,
        ):
            built = Stack(gateway, decisions, drivers)
            responder = asyncio.create_task(built.respond())
            try:
                for host in HOSTS:
                    await built.start(host)
                await wait_until(lambda: set(scheduler.state.migration_targets) == set(HOSTS), 60)
                projection = gateway.runner
                assert projection is not None
                await wait_until(
                    lambda: all(
                        (h := projection.state.hosts.get(name)) is not None
                        and h.receives_migrations
                        for name in HOSTS
                    ),
                    60,
                )
                yield built
            finally:
                responder.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await responder
                await built.stop_all()
    finally:
        await gateway.close()


# -- the phases: each stops the flow at its point, kills, lets the flow go on, restarts -------

Phase = Callable[[Stack, str, str, str], Awaitable[None]]
"""(stack, flow id, instance id, the killed agent's host)."""


async def _held_at(stack: Stack, held: type[Event], flow_id: str, host: str) -> None:
    """Kill once the flow waits for the held answer; answer it once the new agent runs."""
    await wait_until(lambda: stack.seen(held, flow_id), 60)
    await stack.kill(host)
    await stack.start(host)
    stack.held.discard(held)


async def after_claim(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    await _held_at(stack, MigrationPortPlumbRequested, flow_id, host)


async def after_plumb(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    """Killed before the plumbing is answered, restarted once the migration was asked."""
    await wait_until(lambda: stack.seen(MigrationPortPlumbRequested, flow_id), 60)
    await stack.kill(host)
    stack.held.discard(MigrationPortPlumbRequested)
    await wait_until(lambda: stack.seen(InstanceMigrationRequested, flow_id), 60)
    await stack.start(host)


async def during_migrate(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    """Killed while the hypervisor migrates; the guest stays on the source (the job dies
    with the agent) and the new agent (if the source's) migrates it again."""
    source = next(driver for driver in stack.drivers.values() if driver._stalled)
    stack.held.discard(MigrationPortPlumbRequested)
    await asyncio.wait_for(source.migrating.wait(), 60)
    await stack.kill(host)
    source.stall_migrations(False)
    await stack.start(host)
    if stack.drivers[host] is source:  # the journal carries the abandoned step out again
        await wait_until(lambda: source.migrations == 2, 60)


async def migrated_while_dead(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    """Killed while the hypervisor migrates, which completes the job while no agent runs."""
    source = next(driver for driver in stack.drivers.values() if driver._stalled)
    destination = next(driver for driver in stack.drivers.values() if driver is not source)
    stack.held.discard(MigrationPortPlumbRequested)
    await asyncio.wait_for(source.migrating.wait(), 60)
    await stack.kill(host)
    source.stall_migrations(False)
    source.finish_outside(instance_id, destination)
    await stack.start(host)
    # Carried out again from the journal: not here any more, it is found at the destination.
    await wait_until(lambda: source.migrations == 2, 60)


async def after_migrate(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    stack.held.discard(MigrationPortPlumbRequested)
    await _held_at(stack, MigrationPortSwitchRequested, flow_id, host)


async def after_switch(stack: Stack, flow_id: str, instance_id: str, host: str) -> None:
    """Killed before the port switched, restarted once the flow moved the claim and ended."""
    stack.held.discard(MigrationPortPlumbRequested)
    await wait_until(lambda: stack.seen(MigrationPortSwitchRequested, flow_id), 60)
    await stack.kill(host)
    stack.held.discard(MigrationPortSwitchRequested)
    await wait_until(lambda: stack.ended(flow_id) is not None, 60)
    await stack.start(host)


PHASES: dict[str, tuple[Phase, set[type[Event]]]] = {
    "after-claim": (after_claim, {MigrationPortPlumbRequested}),
    "after-plumb": (after_plumb, {MigrationPortPlumbRequested}),
    "during-migrate": (during_migrate, {MigrationPortPlumbRequested}),
    "migrated-while-dead": (migrated_while_dead, {MigrationPortPlumbRequested}),
    "after-migrate": (after_migrate, {MigrationPortPlumbRequested, MigrationPortSwitchRequested}),
    "after-switch": (after_switch, {MigrationPortPlumbRequested, MigrationPortSwitchRequested}),
}


CASES = [
    *(("source", phase) for phase in PHASES),
    *(("destination", phase) for phase in PHASES if phase != "migrated-while-dead"),
]
"""(the agent killed, the phase): the hypervisors finish a job only the source started."""


@pytest.mark.parametrize(("killed", "phase"), CASES, ids=[f"{k}-{p}" for k, p in CASES])
async def test_a_migration_whose_agent_is_killed_ends_with_the_guest_running_once(
    stack: Stack, phase: str, killed: str
) -> None:
    gateway = stack.gateway
    _, token = await gateway.tenant()
    instance_id = (await gateway.instance(token, flavor="m1.tiny"))["id"]
    views: list[dict[str, Any]] = []

    async def running(host: str | None = None) -> bool:
        views.append(await instance(gateway, instance_id, token))
        return views[-1]["status"] == "RUNNING" and host in (None, views[-1]["host"])

    await until(running, 60, views)
    source = views[-1]["host"]
    destination = next(h for h in HOSTS if h != source)
    run, held = PHASES[phase]
    stack.held.update(held)
    if phase in ("during-migrate", "migrated-while-dead"):
        stack.drivers[source].migrating.clear()
        stack.drivers[source].migrations = 0
        stack.drivers[source].stall_migrations()
    path = f"/v1/instances/{instance_id}/migrate"
    asked = await gateway.call("POST", path, json={"host": destination})
    assert asked.status == 202, asked.body
    flow_id = asked.body["flow_id"]

    await run(stack, flow_id, instance_id, source if killed == "source" else destination)

    await wait_until(lambda: stack.ended(flow_id) is not None, 60)
    end = stack.ended(flow_id)
    assert end is not None
    # The guest moves whatever the phase: the dead agent's part is carried out after its
    # restart (the journal), or by the live one.
    completed = isinstance(end.payload, FlowCompleted)
    assert completed, end.payload
    where = destination
    await until(lambda: running(where), 60, views)
    name = domain_name(instance_id)
    assert [h for h in HOSTS if stack.drivers[h].has_domain(name)] == [where]
    assert (await stack.drivers[where].get_info(instance_id)).state is DomainState.RUNNING
    found = await check(gateway.settings, datetime.now(UTC))
    assert found == [], found

    # The agent where it runs owns it: a deletion destroys it there.
    deleted = await gateway.call("DELETE", f"/v1/instances/{instance_id}", token=token)
    assert deleted.status == 202, deleted.body
    await wait_until(lambda: not stack.drivers[where].has_domain(name), 60)
