"""The compute agent's decisions: pure functions of its state, an event or the time.

Decisions are taken for a whole batch of input events before any of its effects has run, so
the state can lag behind the hypervisor by the batch's own effects: a stop may be decided
while the spawn before it is still to come. That is why power actions go to the driver
whatever the last known status is (the effects of one instance run in order, and the driver
treats "already so" as done), and why only the event that placed an instance may spawn it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from virga_compute.agent_effects import (
    Destroy,
    PowerAction,
    Reconcile,
    RegisterHost,
    SampleUsage,
    Spawn,
    UsageDue,
)
from virga_compute.agent_state import AgentState, InstanceRecord
from virga_compute.config import AgentConfig
from virga_compute.driver import InstanceSpec
from virga_compute.reconcile import Expected
from virga_events import Envelope
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.compute import HostHeartbeat, InstanceDeleted, InstanceFailed
from virga_events.catalog.scheduler import InstanceScheduled
from virga_runtime.service import Emit, Intent


def build_spec(record: InstanceRecord) -> InstanceSpec:
    """The driver's spec of an instance, from what the log says about it.

    Disks and NICs join here when storage and network do: the record will collect the
    instance's volumes and bound ports from their events, and this function turns them into
    `DiskSpec`s and `NicSpec`s. Raises ValueError for a spec the driver would refuse.
    """
    return InstanceSpec(
        instance_id=record.instance_id,
        name=record.name,
        vcpus=record.vcpus,
        ram_mb=record.ram_mb,
    )


def decide(config: AgentConfig, state: AgentState, envelope: Envelope) -> Sequence[Intent]:
    """What to do about one new input event; `state` already includes it."""
    event = envelope.payload
    if isinstance(event, InstanceScheduled):
        return _placed(state, envelope, event)
    if isinstance(event, InstanceActionRequested):
        return _action(state, envelope, event)
    if isinstance(event, InstanceDeletionRequested):
        record = state.mine(envelope.aggregate_id)
        # Only the request that started the deletion destroys: a repeated request while one
        # is under way adds nothing.
        if record is not None and record.deletion_event_id == envelope.event_id:
            return [Destroy(record.instance_id, record.tenant_id, state.host)]
    return ()


def _placed(state: AgentState, envelope: Envelope, event: InstanceScheduled) -> Sequence[Intent]:
    if event.host != state.host:
        return ()
    instance_id = envelope.aggregate_id
    deleted = Emit(InstanceDeleted(host=state.host), instance_id, envelope.tenant_id)
    record = state.mine(instance_id)
    if record is None:
        # Placed after its deletion (a late duplicate): never spawn, but say it is gone so
        # the scheduler releases this placement's claim.
        return [deleted] if instance_id in state.deleted else ()
    if record.scheduled_event_id != envelope.event_id:
        return ()  # a duplicate of the placement that made the record
    if record.deletion_event_id is not None:
        return [deleted]  # the deletion overtook the placement: nothing to build
    try:
        spec = build_spec(record)
    except ValueError as exc:
        failed = InstanceFailed(host=state.host, phase="spawn", reason=f"invalid instance: {exc}")
        return [Emit(failed, instance_id, record.tenant_id)]
    return [Spawn(spec, record.tenant_id, state.host)]


def _action(
    state: AgentState, envelope: Envelope, event: InstanceActionRequested
) -> Sequence[Intent]:
    record = state.mine(envelope.aggregate_id)
    if record is None or record.deletion_event_id is not None:
        return ()  # another host's instance, or one on its way out
    if event.action == "start" and record.domain_lost:
        return [Spawn(build_spec(record), record.tenant_id, state.host, phase="start")]
    return [PowerAction(record.instance_id, record.tenant_id, state.host, event.action)]


def _due(last: datetime | None, now: datetime, interval: float) -> bool:
    return last is None or now - last >= timedelta(seconds=interval)


def tick(config: AgentConfig, state: AgentState, now: datetime) -> Sequence[Intent]:
    """Heartbeat and usage sampling, each when its interval has passed since the last one.

    The last times come from the agent's own events, so the cadence survives restarts. Half
    a tick of slack keeps a tick that comes a little early (event times are taken after the
    tick's `now`) from skipping a whole interval.
    """
    slack = config.tick_seconds / 2
    intents: list[Intent] = []
    if _due(state.heartbeat_at, now, config.heartbeat_seconds - slack):
        intents.append(Emit(HostHeartbeat(running=state.running()), state.host, None))
    running = [
        record
        for record in state.instances.values()
        if record.status == "running" and not record.domain_lost
    ]
    if running and _due(state.usage_sampled_at, now, config.usage_seconds - slack):
        due = tuple(UsageDue(r.instance_id, r.tenant_id, r.usage_since) for r in running)
        intents.append(SampleUsage(state.host, now, due))
    return intents


def on_ready(config: AgentConfig, state: AgentState) -> Sequence[Intent]:
    """At each start, once caught up: register the host, then reconcile its domains."""
    expected: list[Expected] = []
    leave_alone: list[str] = []
    for record in state.instances.values():
        if record.deletion_event_id is not None:
            leave_alone.append(record.instance_id)
            continue
        expected.append(
            Expected(
                spec=build_spec(record),
                tenant_id=record.tenant_id,
                should_run=record.status != "stopped",
                lost=record.domain_lost,
            )
        )
    return [
        RegisterHost(config.host, config.rack, config.zone, config.traits),
        Reconcile(config.host, config.restart_policy, tuple(expected), tuple(leave_alone)),
    ]
