"""The compute agents' part in an evacuation (`core.evacuation`, `effects.evacuation`): the
destination rebuilds from the instance's disks once its port is bound there; the dead host's
agent, back again, removes its stale domain and never starts it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from virga_compute.config import ComputeConfig
from virga_compute.core.decide import decide, on_ready
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import InstanceSpec
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.evacuation import evacuation_handlers
from virga_compute.effects.intents import Rebuild, Reconcile, RemoveStale
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import (
    InstanceRebuildFailed,
    InstanceRebuilt,
    InstanceStarted,
)
from virga_events.catalog.network import PortBindingFailed, PortBound, instance_port_id
from virga_events.catalog.scheduler import (
    InstanceRebuildRequested,
    InstanceScheduled,
    MigrationClaimMoved,
)
from virga_runtime import Emit

DEAD, DESTINATION = "host-a", "host-b"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=256, disk_gb=1)
FLOW = "flow-1"


def config(host: str) -> ComputeConfig:
    return ComputeConfig(host=host, rack="r1", zone="z1")


def placement(host: str, network: str | None = None) -> InstanceScheduled:
    return InstanceScheduled(
        host=host, rack="r1", zone="z1", attempt=1, name="vm", flavor=SMALL, network=network
    )


def envelope(event: Event, producer: str, seconds: float = 0, aggregate: str = "i-1") -> Envelope:
    return new_event(
        event,
        aggregate_id=aggregate,
        tenant_id="t-1",
        producer=producer,
        occurred_at=T0 + timedelta(seconds=seconds),
    )


def rebuild_request(network: str | None = None) -> Envelope:
    asked = InstanceRebuildRequested(
        flow_id=FLOW,
        step="rebuild",
        source=DEAD,
        destination=DESTINATION,
        placement=placement(DESTINATION, network),
    )
    return envelope(asked, "scheduler", 10)


def claim_moved() -> Envelope:
    moved = MigrationClaimMoved(
        flow_id=FLOW, step="release_source", source=DEAD, destination=DESTINATION
    )
    return envelope(moved, "scheduler", 12)


def test_the_destination_rebuilds_the_instance_from_the_request() -> None:
    cfg, state = config(DESTINATION), ComputeState(DESTINATION)
    asked = rebuild_request()
    state = evolve(state, asked)
    (intent,) = decide(cfg, state, asked)
    assert isinstance(intent, Rebuild)
    assert (intent.flow_id, intent.step, intent.host) == (FLOW, "rebuild", DESTINATION)
    assert intent.spec.instance_id == "i-1"
    # A repeated request while it is carried out adds nothing; once rebuilt, it is answered.
    again = envelope(asked.payload, "scheduler", 11)
    assert list(decide(cfg, evolve(state, again), again)) == []
    for done in (
        envelope(InstanceStarted(host=DESTINATION), f"compute@{DESTINATION}", 11),
        envelope(InstanceRebuilt(flow_id=FLOW, step="rebuild", host=DESTINATION), "c", 11),
    ):
        state = evolve(state, done)
    state = evolve(state, again)
    (answer,) = decide(cfg, state, again)
    assert isinstance(answer, Emit)
    assert isinstance(answer.payload, InstanceRebuilt)
    assert restore(snapshot(state)) == state


def test_with_a_network_the_rebuild_waits_for_the_port_bound_here() -> None:
    cfg, state = config(DESTINATION), ComputeState(DESTINATION)
    asked = rebuild_request(network="net-1")
    state = evolve(state, asked)
    assert list(decide(cfg, state, asked)) == []  # waits for its port
    bound = PortBound(
        host=DESTINATION,
        instance_id="i-1",
        mac="fa:16:3e:00:00:01",
        tap="tap-1",
        network_id="n",
        ips=("10.0.0.5",),
    )
    port = envelope(bound, f"network@{DESTINATION}", 11, aggregate=instance_port_id("i-1"))
    state = evolve(state, port)
    (intent,) = decide(cfg, state, port)
    assert isinstance(intent, Rebuild)


def test_a_failed_rebuild_leaves_nothing_here() -> None:
    state = evolve(ComputeState(DESTINATION), rebuild_request())
    failed = InstanceRebuildFailed(flow_id=FLOW, step="rebuild", host=DESTINATION, reason="x")
    state = evolve(state, envelope(failed, f"compute@{DESTINATION}", 11))
    assert state.instances == {}
    assert state.rebuilding == {}


def test_another_hosts_request_is_none_of_this_hosts_business() -> None:
    state = ComputeState("host-c")
    asked = rebuild_request()
    state = evolve(state, asked)
    assert state.instances == {}
    assert decide(config("host-c"), state, asked) == ()


def test_the_dead_host_back_forgets_the_instance_and_removes_its_domain_never_starting_it() -> None:
    cfg, state = config(DEAD), ComputeState(DEAD)
    for event in (
        envelope(placement(DEAD), "scheduler"),
        envelope(InstanceStarted(host=DEAD), f"compute@{DEAD}", 1),
    ):
        state = evolve(state, event)
    moved = claim_moved()
    state = evolve(state, moved)
    assert "i-1" not in state.instances
    assert decide(cfg, state, moved) == [RemoveStale("i-1", DEAD)]
    # At its next start (a replay: no decision ran), it removes it too and reconciles it not.
    ready = on_ready(cfg, restore(snapshot(state)))
    assert RemoveStale("i-1", DEAD) in ready
    (reconcile,) = [i for i in ready if isinstance(i, Reconcile)]
    assert reconcile.expected == ()
    assert "i-1" in reconcile.leave_alone


async def test_the_effects_rebuild_and_remove_over_the_driver() -> None:
    driver = MemoryComputeDriver()
    handlers = evacuation_handlers(driver)
    spec = InstanceSpec(instance_id="i-1", name="vm", vcpus=1, ram_mb=256)
    emitted = await handlers[Rebuild](Rebuild(spec, "t-1", DESTINATION, FLOW, "rebuild"))
    assert [type(e.payload) for e in emitted] == [InstanceStarted, InstanceRebuilt]
    assert [i.instance_id for i in await driver.list_instances()] == ["i-1"]
    assert await handlers[RemoveStale](RemoveStale("i-1", DEAD)) == []
    assert await driver.list_instances() == []
    assert await handlers[RemoveStale](RemoveStale("i-1", DEAD)) == []  # gone already: as good


def test_a_port_that_cannot_be_bound_here_fails_the_rebuild_at_once() -> None:
    cfg, state = config(DESTINATION), ComputeState(DESTINATION)
    asked = rebuild_request(network="net-1")
    state = evolve(state, asked)
    refused = PortBindingFailed(host=DESTINATION, instance_id="i-1", reason="no bridge")
    port = envelope(refused, f"network@{DESTINATION}", 11, aggregate=instance_port_id("i-1"))
    state = evolve(state, port)
    (answer,) = decide(cfg, state, port)
    assert isinstance(answer, Emit)
    assert isinstance(answer.payload, InstanceRebuildFailed)
    assert answer.payload.flow_id == FLOW
    assert "no bridge" in answer.payload.reason
