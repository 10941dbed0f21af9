"""How instance facts from the api, scheduler and compute topics fold into the projection.

Each topic keeps one instance's events in order, but a rebuild reads the topics one after
the other: handlers record facts per topic and `Instance.status` derives the status from them.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

import msgspec

from virga_events import Envelope, Event
from virga_events.catalog import api, compute, network, scheduler, storage
from virga_gateway.fold_hosts import host_record
from virga_gateway.model import HISTORY_LIMIT, GatewayState, HistoryEntry, Instance


def instance_record(state: GatewayState, env: Envelope, instance_id: str | None = None) -> Instance:
    """The instance `env` is about (a stub if its request is not folded yet), touched by it.
    `instance_id`: another aggregate's fact about the instance (its boot volume, its port)."""
    key = instance_id or env.aggregate_id
    instance = state.instances.get(key)
    if instance is None:
        instance = state.instances[key] = Instance(id=key)
    if instance.updated_at is None or env.occurred_at > instance.updated_at:
        instance.updated_at = env.occurred_at
    return instance


def _requested(state: GatewayState, env: Envelope) -> None:
    event: api.InstanceRequested = env.payload
    instance = instance_record(state, env)
    if instance.requested:
        return
    instance.requested = True
    instance.name = event.name
    instance.tenant_id = env.tenant_id or ""
    instance.flavor = event.flavor
    instance.image = event.image
    instance.network = event.network
    instance.server_group = event.server_group
    instance.availability_zone = event.availability_zone
    instance.required_traits = event.required_traits
    instance.delete_on_termination = event.delete_on_termination
    instance.created_at = env.occurred_at
    key = (env.occurred_at, instance.id)
    bisect.insort(state.instance_order, key)
    bisect.insort(state.tenant_instance_order.setdefault(instance.tenant_id, []), key)
    if event.server_group is not None and not instance.deleted:
        state.group_members.setdefault(event.server_group, []).append(instance.id)


def _deletion_requested(state: GatewayState, env: Envelope) -> None:
    instance_record(state, env).deletion_requested = True


def _scheduled(state: GatewayState, env: Envelope) -> None:
    event: scheduler.InstanceScheduled = env.payload
    instance = instance_record(state, env)
    instance.placed_on = event.host
    instance.scheduling_fault = None
    claims = state.claims.setdefault(instance.id, {})
    if event.host not in claims:
        claims[event.host] = event.flavor
        host_record(state, event.host).allocated.add(event.flavor)


def _claim_released(state: GatewayState, env: Envelope) -> None:
    event: scheduler.ClaimReleased = env.payload
    instance = instance_record(state, env)
    if instance.placed_on == event.host:
        instance.placed_on = None
    claims = state.claims.get(instance.id, {})
    flavor = claims.pop(event.host, None)
    if flavor is not None:
        host_record(state, event.host).allocated.add(flavor, -1)
    if not claims:
        state.claims.pop(instance.id, None)


def _scheduling_failed(state: GatewayState, env: Envelope) -> None:
    event: scheduler.InstanceSchedulingFailed = env.payload
    instance = instance_record(state, env)
    instance.scheduling_fault = event.reason
    instance.placed_on = None


def _compute_succeeded(state: GatewayState, env: Envelope) -> None:
    event: compute.InstanceStarted | compute.InstanceStopped | compute.InstanceRebooted
    event = env.payload
    instance = instance_record(state, env)
    stopped = isinstance(event, compute.InstanceStopped)
    instance.compute_status = "STOPPED" if stopped else "RUNNING"
    instance.compute_host = event.host
    instance.compute_fault = None  # a fault describes the last failure since the last success


def _failed(state: GatewayState, env: Envelope) -> None:
    # A failed spawn leaves the compute status unset (BUILDING): the scheduler reschedules
    # the instance or gives up with InstanceSchedulingFailed (ERROR).
    event: compute.InstanceFailed = env.payload
    instance = instance_record(state, env)
    instance.compute_host = event.host
    instance.compute_fault = event.reason


def _domain_lost(state: GatewayState, env: Envelope) -> None:
    event: compute.InstanceDomainLost = env.payload
    instance = instance_record(state, env)
    instance.compute_host = event.host
    instance.compute_fault = f"domain lost on {event.host}"


def _deleted(state: GatewayState, env: Envelope) -> None:
    event: compute.InstanceDeleted = env.payload
    instance = instance_record(state, env)
    instance.deleted = True
    if event.host is not None:
        instance.compute_host = event.host
    if instance.server_group is not None:
        members = state.group_members.get(instance.server_group, [])
        if instance.id in members:
            members.remove(instance.id)


def build_fact_instance(env: Envelope) -> str | None:
    """The instance whose build a boot volume's or a port's fact is part of, if any: shown in
    its history, so that following it shows every step of the boot."""
    payload = env.payload
    if isinstance(payload, _BUILD_FACTS):
        return payload.instance_id
    return None


def record_history(state: GatewayState, env: Envelope, instance_id: str | None = None) -> None:
    """Keep `env` in its instance's bounded history, in event-time order."""
    history = instance_record(state, env, instance_id).history
    if any(entry.event_id == env.event_id for entry in history[-16:]):
        return  # a duplicated record arrives next to its original
    entry = HistoryEntry(
        event_id=env.event_id,
        type=env.type,
        producer=env.producer,
        occurred_at=env.occurred_at,
        correlation_id=env.correlation_id,
        causation_id=env.causation_id,
        # As JSON values, exactly as a snapshot restores them (tuples become lists...).
        payload=msgspec.json.decode(msgspec.json.encode(env.payload)),
    )
    # Event time, not arrival: a rebuild reads the scheduler's and agents' facts before the
    # requests that caused them, and the history must read the same before and after.
    bisect.insort(history, entry, key=lambda e: e.occurred_at)
    if len(history) > HISTORY_LIMIT:
        del history[: len(history) - HISTORY_LIMIT]


HANDLERS: dict[type[Event], Callable[[GatewayState, Envelope], None]] = {
    api.InstanceRequested: _requested,
    api.InstanceDeletionRequested: _deletion_requested,
    scheduler.InstanceScheduled: _scheduled,
    scheduler.InstanceSchedulingFailed: _scheduling_failed,
    scheduler.ClaimReleased: _claim_released,
    compute.InstanceStarted: _compute_succeeded,
    compute.InstanceStopped: _compute_succeeded,
    compute.InstanceRebooted: _compute_succeeded,
    compute.InstanceFailed: _failed,
    compute.InstanceDomainLost: _domain_lost,
    compute.InstanceDeleted: _deleted,
}

_BUILD_FACTS = (
    storage.VolumeCreated,
    network.PortAllocated,
    network.PortAllocationFailed,
    network.PortBound,
    network.PortBindingFailed,
)
BUILD_FACTS: frozenset[type[Event]] = frozenset(_BUILD_FACTS)
"""Facts of other aggregates that belong in an instance's history (see `build_fact_instance`)."""

HISTORY_EVENTS: frozenset[type[Event]] = frozenset({*HANDLERS, api.InstanceActionRequested})
"""Events keyed by an instance id: its history. UsageSampled is left out, being a measurement
every few seconds rather than something that happened to the instance."""
