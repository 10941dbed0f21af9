"""The scheduler's fold: what each event it reads does to its ``SchedulerState``.

Inputs are recorded as facts on their own; claims, placement outcomes and host up/down come
only from the scheduler's own events (see ``state`` for why). Each fold validates before it
changes anything, so a refused event leaves the state as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from virga_events import Envelope
from virga_events.catalog.api import (
    AllocationRatiosSet,
    HostDisabled,
    HostEnabled,
    InstanceDeletionRequested,
    InstanceRequested,
    ServerGroupCreated,
)
from virga_events.catalog.compute import (
    HostHeartbeat,
    HostRegistered,
    InstanceDeleted,
    InstanceFailed,
)
from virga_events.catalog.scheduler import (
    ClaimReleased,
    HostMarkedDown,
    HostMarkedUp,
    InstanceScheduled,
    InstanceSchedulingFailed,
)
from virga_scheduler.placement import AllocationRatios, Claim, Host, ServerGroup
from virga_scheduler.state import (
    DEFAULT_RATIOS_KEY,
    TOMBSTONE_LIMIT,
    InstanceRecord,
    SchedulerState,
)


def _instance_requested(
    state: SchedulerState, envelope: Envelope, event: InstanceRequested
) -> None:
    instance_id = envelope.aggregate_id
    record = state.instances.get(instance_id)
    if instance_id in state.deleted or (record is not None and record.requested is not None):
        return  # a late or repeated request: the first one is the instance's
    # Validate before changing anything, so a bad flavor is refused (and dead-lettered) whole.
    probe = InstanceRecord(instance_id, envelope.tenant_id, event)
    probe.placement_request()
    if record is None:
        record = state.instances[instance_id] = probe
    record.tenant_id, record.requested = envelope.tenant_id, event
    record.requested_at = envelope.occurred_at
    if record.status == "pending":
        state.pending.add(instance_id)


def _deletion_requested(
    state: SchedulerState, envelope: Envelope, event: InstanceDeletionRequested
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if record is not None:
        record.deletion_requested = True


def _server_group_created(
    state: SchedulerState, envelope: Envelope, event: ServerGroupCreated
) -> None:
    if envelope.aggregate_id not in state.groups:  # a group's policy never changes
        state.set_group(ServerGroup(envelope.aggregate_id, event.policy, event.scope))


def _host_disabled(state: SchedulerState, envelope: Envelope, event: HostDisabled) -> None:
    state.disabled.add(envelope.aggregate_id)
    state.status_changed(envelope.aggregate_id)


def _host_enabled(state: SchedulerState, envelope: Envelope, event: HostEnabled) -> None:
    state.disabled.discard(envelope.aggregate_id)
    state.status_changed(envelope.aggregate_id)


def _ratios_set(state: SchedulerState, envelope: Envelope, event: AllocationRatiosSet) -> None:
    ratios = AllocationRatios(cpu=event.cpu, ram=event.ram, disk=event.disk)
    if envelope.aggregate_id == DEFAULT_RATIOS_KEY:
        state.ratios_set = ratios
    else:
        state.ratio_overrides[envelope.aggregate_id] = ratios
    state.inventory_changed()


def _seen(state: SchedulerState, host: str, at: datetime) -> None:
    last = state.last_seen.get(host)
    if last is None or at > last:
        state.last_seen[host] = at


def _host_registered(state: SchedulerState, envelope: Envelope, event: HostRegistered) -> None:
    name = envelope.aggregate_id
    host = Host(
        name,
        event.rack,
        event.zone,
        event.vcpus,
        event.ram_mb,
        event.disk_gb,
        frozenset(event.traits),
    )
    if state.hosts.get(name) != host:  # an agent's restart re-registers the same host
        state.hosts[name] = host
        state.inventory_changed()
    _seen(state, name, envelope.occurred_at)


def _heartbeat(state: SchedulerState, envelope: Envelope, event: HostHeartbeat) -> None:
    # The hottest event of all (every host, every few seconds): one dict write, no view work.
    _seen(state, envelope.aggregate_id, envelope.occurred_at)


def _instance_failed(state: SchedulerState, envelope: Envelope, event: InstanceFailed) -> None:
    instance_id = envelope.aggregate_id
    if event.phase != "spawn" or instance_id in state.deleted:
        return  # only a failed spawn frees the claim and moves the instance
    record = state.instances.get(instance_id)
    if record is None:
        record = state.instances[instance_id] = InstanceRecord(instance_id, envelope.tenant_id)
    if event.host not in record.failed_hosts:
        record.failed_hosts = (*record.failed_hosts, event.host)
    record.last_failure = event.reason


def _instance_deleted(state: SchedulerState, envelope: Envelope, event: InstanceDeleted) -> None:
    instance_id = envelope.aggregate_id
    state.deleted.pop(instance_id, None)  # re-inserted as the youngest
    state.deleted[instance_id] = None
    while len(state.deleted) > TOMBSTONE_LIMIT:
        del state.deleted[next(iter(state.deleted))]
    state.forget_if_gone(instance_id)


def _instance_scheduled(
    state: SchedulerState, envelope: Envelope, event: InstanceScheduled
) -> None:
    instance_id, flavor = envelope.aggregate_id, event.flavor
    state.add_claim(Claim(instance_id, event.host, flavor.vcpus, flavor.ram_mb, flavor.disk_gb))
    record = state.instances.get(instance_id)
    if record is None:
        return  # deleted before this placement was folded (a rebuild): its release follows
    record.attempts = max(record.attempts, event.attempt)
    record.status = "scheduled"
    state.pending.discard(instance_id)
    group_id = record.requested.server_group if record.requested is not None else None
    group = state.groups.get(group_id) if group_id is not None else None
    if group is not None and instance_id not in group.members:
        state.set_group(replace(group, members=group.members | {instance_id}))


def _scheduling_failed(
    state: SchedulerState, envelope: Envelope, event: InstanceSchedulingFailed
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if record is not None:
        record.status = "failed"
    state.pending.discard(envelope.aggregate_id)


def _claim_released(state: SchedulerState, envelope: Envelope, event: ClaimReleased) -> None:
    instance_id = envelope.aggregate_id
    held = state.claims.get(instance_id)
    if held is None or held.host != event.host:
        return
    state.release_claim(instance_id)
    record = state.instances.get(instance_id)
    group_id = record.requested.server_group if record and record.requested else None
    group = state.groups.get(group_id) if group_id is not None else None
    if group is not None and instance_id in group.members:
        state.set_group(replace(group, members=group.members - {instance_id}))
    state.forget_if_gone(instance_id)


def _marked_down(state: SchedulerState, envelope: Envelope, event: HostMarkedDown) -> None:
    state.down[envelope.aggregate_id] = event.last_heartbeat_at
    state.status_changed(envelope.aggregate_id)


def _marked_up(state: SchedulerState, envelope: Envelope, event: HostMarkedUp) -> None:
    state.down.pop(envelope.aggregate_id, None)
    state.status_changed(envelope.aggregate_id)


_FOLDS: dict[type[Any], Callable[[SchedulerState, Envelope, Any], None]] = {
    InstanceRequested: _instance_requested,
    InstanceDeletionRequested: _deletion_requested,
    ServerGroupCreated: _server_group_created,
    HostDisabled: _host_disabled,
    HostEnabled: _host_enabled,
    AllocationRatiosSet: _ratios_set,
    HostRegistered: _host_registered,
    HostHeartbeat: _heartbeat,
    InstanceFailed: _instance_failed,
    InstanceDeleted: _instance_deleted,
    InstanceScheduled: _instance_scheduled,
    InstanceSchedulingFailed: _scheduling_failed,
    ClaimReleased: _claim_released,
    HostMarkedDown: _marked_down,
    HostMarkedUp: _marked_up,
}
"""What each event the scheduler reads does to its state; every other type leaves it alone."""


def evolve(state: SchedulerState, envelope: Envelope) -> SchedulerState:
    """Fold one event into the state (deterministic, no I/O). Raises before changing anything
    when it refuses an event (a negative capacity, ratio or flavor)."""
    fold = _FOLDS.get(type(envelope.payload))
    if fold is not None:
        fold(state, envelope, envelope.payload)
    return state
