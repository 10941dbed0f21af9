"""How instance facts from the api, scheduler and compute topics fold into the projection.

Each topic keeps one instance's events in order, but a rebuild reads the topics one after
the other: handlers record facts per topic and `Instance.status` derives the status from them.
`history` keeps every event about an instance (and the facts of its build) in its history:
`state` folds it after every other fold.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from virga_events import Envelope
from virga_events.catalog import api, compute, network, scheduler, storage
from virga_gateway.hosts.fold import host_record
from virga_gateway.instances.model import HISTORY_LIMIT, HistoryEntry, Instance
from virga_gateway.retention import earliest, is_forgotten
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


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


@folds.on(api.InstanceRequested)
def _requested(state: GatewayState, env: Envelope, event: api.InstanceRequested) -> None:
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
    instance.restart_policy = event.restart_policy
    instance.hostname = event.hostname
    instance.key_name = event.key_name
    instance.config_drive = event.config_drive
    instance.created_at = env.occurred_at
    key = (env.occurred_at, instance.id)
    bisect.insort(state.instance_order, key)
    bisect.insort(state.tenant_instance_order.setdefault(instance.tenant_id, []), key)
    if event.server_group is not None and not instance.deleted:
        state.group_members.setdefault(event.server_group, []).append(instance.id)


@folds.on(api.InstanceDeletionRequested)
def _deletion_requested(
    state: GatewayState, env: Envelope, event: api.InstanceDeletionRequested
) -> None:
    instance_record(state, env).deletion_requested = True


@folds.on(scheduler.InstanceScheduled)
def _scheduled(state: GatewayState, env: Envelope, event: scheduler.InstanceScheduled) -> None:
    instance = instance_record(state, env)
    instance.placed_on = event.host
    instance.scheduling_fault = None
    claims = state.claims.setdefault(instance.id, {})
    if event.host not in claims:
        claims[event.host] = event.flavor
        host_record(state, event.host).allocated.add(event.flavor)


@folds.on(scheduler.ClaimReleased)
def _claim_released(state: GatewayState, env: Envelope, event: scheduler.ClaimReleased) -> None:
    instance = instance_record(state, env)
    if instance.placed_on == event.host:
        instance.placed_on = None
    claims = state.claims.get(instance.id, {})
    flavor = claims.pop(event.host, None)
    if flavor is not None:
        host_record(state, event.host).allocated.add(flavor, -1)
    if not claims:
        state.claims.pop(instance.id, None)


@folds.on(scheduler.InstanceSchedulingFailed)
def _scheduling_failed(
    state: GatewayState, env: Envelope, event: scheduler.InstanceSchedulingFailed
) -> None:
    instance = instance_record(state, env)
    instance.scheduling_fault = event.reason
    instance.placed_on = None


def _compute_succeeded(
    state: GatewayState,
    env: Envelope,
    event: compute.InstanceStarted
    | compute.InstanceStopped
    | compute.InstanceRebooted
    | compute.InstanceRestarted,
    status: Literal["RUNNING", "STOPPED"],
) -> None:
    instance = instance_record(state, env)
    instance.compute_status = status
    instance.stop_cause = event.cause if isinstance(event, compute.InstanceStopped) else None
    instance.compute_host = event.host
    instance.compute_fault = None  # a fault describes the last failure since the last success


@folds.on(compute.InstanceStarted)
def _started(state: GatewayState, env: Envelope, event: compute.InstanceStarted) -> None:
    _compute_succeeded(state, env, event, "RUNNING")


@folds.on(compute.InstanceRebooted)
def _rebooted(state: GatewayState, env: Envelope, event: compute.InstanceRebooted) -> None:
    _compute_succeeded(state, env, event, "RUNNING")


@folds.on(compute.InstanceRestarted)
def _restarted(state: GatewayState, env: Envelope, event: compute.InstanceRestarted) -> None:
    _compute_succeeded(state, env, event, "RUNNING")


@folds.on(compute.InstanceStopped)
def _stopped(state: GatewayState, env: Envelope, event: compute.InstanceStopped) -> None:
    _compute_succeeded(state, env, event, "STOPPED")


@folds.on(compute.InstanceFailed)
def _failed(state: GatewayState, env: Envelope, event: compute.InstanceFailed) -> None:
    # A failed spawn leaves the compute status unset (BUILDING): the scheduler reschedules
    # the instance or gives up with InstanceSchedulingFailed (ERROR).
    instance = instance_record(state, env)
    instance.compute_host = event.host
    instance.compute_fault = event.reason


@folds.on(compute.InstanceDomainLost)
def _domain_lost(state: GatewayState, env: Envelope, event: compute.InstanceDomainLost) -> None:
    instance = instance_record(state, env)
    instance.compute_host = event.host
    instance.compute_fault = f"domain lost on {event.host}"


@folds.on(compute.InstanceDeleted)
def _deleted(state: GatewayState, env: Envelope, event: compute.InstanceDeleted) -> None:
    instance = instance_record(state, env)
    instance.deleted = True
    instance.deleted_at = earliest(instance.deleted_at, env.occurred_at)
    if event.host is not None:
        instance.compute_host = event.host
    if instance.server_group is not None:
        members = state.group_members.get(instance.server_group, [])
        if instance.id in members:
            members.remove(instance.id)


# -- history -------------------------------------------------------------------------------

history: Folds[GatewayState] = Folds()
"""Keeps events about an instance in its history; folded after every other fold."""


def record_history(state: GatewayState, env: Envelope, instance_id: str | None = None) -> None:
    """Keep `env` in its instance's bounded history, in event-time order."""
    entries = instance_record(state, env, instance_id).history
    if any(entry.event_id == env.event_id for entry in entries[-16:]):
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
    bisect.insort(entries, entry, key=lambda e: e.occurred_at)
    if len(entries) > HISTORY_LIMIT:
        del entries[: len(entries) - HISTORY_LIMIT]


def _instance_event(state: GatewayState, env: Envelope, event: Any) -> None:
    record_history(state, env)


BuildFact = (
    storage.VolumeCreated
    | network.PortAllocated
    | network.PortAllocationFailed
    | network.PortBound
    | network.PortBindingFailed
)
"""Facts of other aggregates that belong in an instance's history: the instance whose build a
boot volume's or a port's fact is part of, if any, so that following it shows every step."""


def _build_fact(state: GatewayState, env: Envelope, event: BuildFact) -> None:
    if event.instance_id is not None and not is_forgotten(state, "instance", event.instance_id):
        record_history(state, env, event.instance_id)


HISTORY_EVENTS = frozenset(
    {
        *folds.event_types,
        api.InstanceActionRequested,
        api.ConsoleTicketIssued,
        compute.ConsoleSessionOpened,
    }
)
"""Events keyed by an instance id: its history. UsageSampled is left out, being a measurement
every few seconds rather than something that happened to the instance."""

for _kind in HISTORY_EVENTS:
    history.add(_kind, _instance_event)
history.add(storage.VolumeCreated, _build_fact)
history.add(network.PortAllocated, _build_fact)
history.add(network.PortAllocationFailed, _build_fact)
history.add(network.PortBound, _build_fact)
history.add(network.PortBindingFailed, _build_fact)
