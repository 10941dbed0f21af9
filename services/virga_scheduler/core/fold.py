"""The scheduler's fold: what each event it reads does to its ``SchedulerState``.

Inputs are recorded as facts on their own; claims, placement outcomes and host up/down come
only from the scheduler's own events (see ``model`` for why). Each fold validates before it
changes anything, so a refused event leaves the state as it was.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

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
    InstanceRebooted,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
)
from virga_events.catalog.scheduler import (
    ClaimReleased,
    HostMarkedDown,
    HostMarkedUp,
    InstanceScheduled,
    InstanceSchedulingFailed,
    MigrationClaimMoved,
    MigrationDestinationClaimed,
    MigrationDestinationReleased,
    ResizeClaimed,
    ResizeClaimMoved,
    ResizeClaimReleased,
)
from virga_runtime.flows import flow_folds
from virga_runtime.folding import Folds
from virga_scheduler.core.migration import destination_claim_id
from virga_scheduler.core.model import (
    DEFAULT_RATIOS_KEY,
    TOMBSTONE_LIMIT,
    InstanceRecord,
    MigrationTarget,
    SchedulerState,
)
from virga_scheduler.core.placement import AllocationRatios, Claim, Host, ServerGroup
from virga_scheduler.core.resize import resize_claim_id

folds: Folds[SchedulerState] = Folds()
"""What each event the scheduler reads does to its state; every other type leaves it alone."""


@folds.on(InstanceRequested)
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


@folds.on(InstanceDeletionRequested)
def _deletion_requested(
    state: SchedulerState, envelope: Envelope, event: InstanceDeletionRequested
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if record is not None:
        record.deletion_requested = True


@folds.on(ServerGroupCreated)
def _server_group_created(
    state: SchedulerState, envelope: Envelope, event: ServerGroupCreated
) -> None:
    if envelope.aggregate_id not in state.groups:  # a group's policy never changes
        state.set_group(ServerGroup(envelope.aggregate_id, event.policy, event.scope))


@folds.on(HostDisabled)
def _host_disabled(state: SchedulerState, envelope: Envelope, event: HostDisabled) -> None:
    state.disabled.add(envelope.aggregate_id)
    state.status_changed(envelope.aggregate_id)


@folds.on(HostEnabled)
def _host_enabled(state: SchedulerState, envelope: Envelope, event: HostEnabled) -> None:
    state.disabled.discard(envelope.aggregate_id)
    state.status_changed(envelope.aggregate_id)


@folds.on(AllocationRatiosSet)
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


@folds.on(HostRegistered)
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
    if event.migration_uri is None:
        state.migration_targets.pop(name, None)
    else:
        state.migration_targets[name] = MigrationTarget(
            event.migration_uri, event.migration_address, event.ceph_user, event.ceph_secret_uuid
        )
    _seen(state, name, envelope.occurred_at)


@folds.on(HostHeartbeat)
def _heartbeat(state: SchedulerState, envelope: Envelope, event: HostHeartbeat) -> None:
    # The hottest event of all (every host, every few seconds): one dict write, no view work.
    _seen(state, envelope.aggregate_id, envelope.occurred_at)


@folds.on(InstanceFailed)
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


@folds.on(InstanceDeleted)
def _instance_deleted(state: SchedulerState, envelope: Envelope, event: InstanceDeleted) -> None:
    instance_id = envelope.aggregate_id
    state.deleted.pop(instance_id, None)  # re-inserted as the youngest
    state.deleted[instance_id] = None
    state.stopped.discard(instance_id)
    while len(state.deleted) > TOMBSTONE_LIMIT:
        del state.deleted[next(iter(state.deleted))]
    state.forget_if_gone(instance_id)


@folds.on(InstanceStopped)
def _instance_stopped(state: SchedulerState, envelope: Envelope, event: InstanceStopped) -> None:
    if envelope.aggregate_id not in state.deleted:
        state.stopped.add(envelope.aggregate_id)


def _instance_runs(state: SchedulerState, envelope: Envelope, event: object) -> None:
    state.stopped.discard(envelope.aggregate_id)


for _runs in (InstanceStarted, InstanceRestarted, InstanceRebooted):
    folds.add(_runs, _instance_runs)


@folds.on(InstanceScheduled)
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


@folds.on(InstanceSchedulingFailed)
def _scheduling_failed(
    state: SchedulerState, envelope: Envelope, event: InstanceSchedulingFailed
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if record is not None:
        record.status = "failed"
    state.pending.discard(envelope.aggregate_id)


@folds.on(ClaimReleased)
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


@folds.on(HostMarkedDown)
def _marked_down(state: SchedulerState, envelope: Envelope, event: HostMarkedDown) -> None:
    state.down[envelope.aggregate_id] = event.last_heartbeat_at
    state.status_changed(envelope.aggregate_id)


@folds.on(HostMarkedUp)
def _marked_up(state: SchedulerState, envelope: Envelope, event: HostMarkedUp) -> None:
    state.down.pop(envelope.aggregate_id, None)
    state.status_changed(envelope.aggregate_id)


# -- live migrations (virga_scheduler.core.migration) ------------------------------------------


@folds.on(MigrationDestinationClaimed)
def _destination_claimed(
    state: SchedulerState, envelope: Envelope, event: MigrationDestinationClaimed
) -> None:
    flavor = event.flavor
    key = destination_claim_id(envelope.aggregate_id, event.flow_id)
    state.add_claim(Claim(key, event.host, flavor.vcpus, flavor.ram_mb, flavor.disk_gb))


@folds.on(MigrationDestinationReleased)
def _destination_released(
    state: SchedulerState, envelope: Envelope, event: MigrationDestinationReleased
) -> None:
    key = destination_claim_id(envelope.aggregate_id, event.flow_id)
    held = state.claims.get(key)
    if held is not None and held.host == event.host:
        state.release_claim(key)


@folds.on(MigrationClaimMoved)
def _claim_moved(state: SchedulerState, envelope: Envelope, event: MigrationClaimMoved) -> None:
    """The destination's hold becomes the instance's claim; the source's room is free."""
    instance_id = envelope.aggregate_id
    key = destination_claim_id(instance_id, event.flow_id)
    held, destination = state.claims.get(instance_id), state.claims.get(key)
    if destination is None:
        return  # moved before: a repeated event
    state.release_claim(key)
    if held is not None and held.host == event.source:
        state.add_claim(replace(destination, instance_id=instance_id))
    # Else the instance was deleted while it moved: its claim is gone, and so is the hold.


# -- resizes (virga_scheduler.core.resize) ----------------------------------------------------


@folds.on(ResizeClaimed)
def _resize_claimed(state: SchedulerState, envelope: Envelope, event: ResizeClaimed) -> None:
    flavor = event.flavor
    key = resize_claim_id(envelope.aggregate_id, event.flow_id)
    state.add_claim(Claim(key, event.host, flavor.vcpus, flavor.ram_mb, flavor.disk_gb))


@folds.on(ResizeClaimReleased)
def _resize_released(state: SchedulerState, envelope: Envelope, event: ResizeClaimReleased) -> None:
    key = resize_claim_id(envelope.aggregate_id, event.flow_id)
    held = state.claims.get(key)
    if held is not None and held.host == event.host:
        state.release_claim(key)


@folds.on(ResizeClaimMoved)
def _resize_moved(state: SchedulerState, envelope: Envelope, event: ResizeClaimMoved) -> None:
    """The resize's hold becomes the instance's claim, and the new flavor its flavor (what a
    later migration or placement asks for)."""
    instance_id = envelope.aggregate_id
    key = resize_claim_id(instance_id, event.flow_id)
    held, hold = state.claims.get(instance_id), state.claims.get(key)
    if hold is None:
        return  # moved before: a repeated event
    state.release_claim(key)
    if held is not None and held.host == event.source:
        state.add_claim(replace(hold, instance_id=instance_id))
    record = state.instances.get(instance_id)
    if record is not None and record.requested is not None:
        record.requested = replace(record.requested, flavor=event.flavor)


folds.include(flow_folds(lambda state: state.flows))

evolve = folds.evolve
"""Fold one event into the state (deterministic, no I/O). Raises before changing anything
when it refuses an event (a negative capacity, ratio or flavor)."""
