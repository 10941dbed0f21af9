"""The compute agent's fold: one `Folds` table from events to its `ComputeState`.

The fold is written to give the same state whatever the interleaving of its input topics
(api and scheduler are read side by side, in no fixed order) and even when, as in a rebuild,
every input is folded before the agent's own outcome events. So *what the domain is doing*
comes only from the agent's own events (InstanceStarted, InstanceStopped...), and input
events only record what was asked (a placement, a deletion request) or what another service
made (a boot volume on `<ns>.storage`, a port bound on `<ns>.network`).
"""

from __future__ import annotations

from typing import Any

from virga_compute.core.console import folds as console_folds
from virga_compute.core.evacuation import folds as evacuation_folds
from virga_compute.core.fold_volumes import volume_folds
from virga_compute.core.migration import folds as migration_folds
from virga_compute.core.model import (
    TOMBSTONE_LIMIT,
    ComputeState,
    InstanceRecord,
    PortBinding,
)
from virga_compute.core.resize import folds as resize_folds
from virga_events import Envelope
from virga_events.catalog.api import InstanceActionRequested, InstanceDeletionRequested
from virga_events.catalog.compute import (
    FINAL_PHASES,
    HostHeartbeat,
    InstanceDeleted,
    InstanceDomainLost,
    InstanceFailed,
    InstanceRebooted,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.network import (
    NetworkCreated,
    NetworkDeleted,
    PortAllocationFailed,
    PortBindingFailed,
    PortBound,
    PortDeleted,
    PortUnbound,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import (
    VolumeCreated,
    VolumeDeleted,
    VolumeFailed,
    boot_volume_id,
)
from virga_runtime.folding import Folds

folds: Folds[ComputeState] = Folds()


def _bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    table.pop(key, None)  # re-inserted as the youngest
    table[key] = value
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]


def _leave(state: ComputeState, record: InstanceRecord) -> None:
    """The instance is no longer this host's; a deletion it was waiting for stays pending."""
    del state.instances[record.instance_id]
    if record.deletion_event_id is not None:
        _bounded_put(state.pending_deletions, record.instance_id, record.deletion_event_id)


# -- placements and deletions ------------------------------------------------------------------


@folds.on(InstanceScheduled)
def _placed(state: ComputeState, envelope: Envelope, event: InstanceScheduled) -> None:
    instance_id = envelope.aggregate_id
    record = state.instances.get(instance_id)
    if event.host != state.host:
        if record is not None and event.attempt > record.attempt:
            _leave(state, record)  # the latest placement wins
        return
    if instance_id in state.deleted:
        return
    if record is not None and event.attempt <= record.attempt:
        return  # a duplicate or stale placement
    pending = state.pending_deletions.pop(instance_id, None)
    # Requests read before the placement (a rebuild's order) that were made after it.
    waiting = state.pending_actions.pop(instance_id, {})
    actions = {
        event_id: action
        for event_id, (action, at) in waiting.items()
        if at >= envelope.occurred_at and pending is None
    }
    state.instances[instance_id] = InstanceRecord(
        instance_id=instance_id,
        tenant_id=envelope.tenant_id,
        name=event.name,
        vcpus=event.flavor.vcpus,
        ram_mb=event.flavor.ram_mb,
        attempt=event.attempt,
        scheduled_event_id=envelope.event_id,
        image=event.image,
        network=event.network,
        deletion_event_id=record.deletion_event_id if record is not None else pending,
        restart_policy=event.restart_policy,
        hostname=event.hostname,
        key_name=event.key_name,
        public_keys=tuple(event.public_keys),
        user_data=event.user_data,
        config_drive=event.config_drive,
        actions=actions,
    )


ACTIONS_LIMIT = 16
"""Bound of an instance's unanswered power requests (a burst of them is answered in order)."""


@folds.on(InstanceActionRequested)
def _action_requested(
    state: ComputeState, envelope: Envelope, event: InstanceActionRequested
) -> None:
    # As `decide` does: only requests it carries out await an outcome.
    instance_id = envelope.aggregate_id
    record = state.instances.get(instance_id)
    if record is not None:
        if record.deletion_event_id is None:
            _bounded_actions(record, envelope.event_id, event.action)
    elif instance_id not in state.deleted and instance_id not in state.pending_deletions:
        waiting = dict(state.pending_actions.get(instance_id, {}))
        waiting[envelope.event_id] = (event.action, envelope.occurred_at)
        while len(waiting) > ACTIONS_LIMIT:
            del waiting[next(iter(waiting))]
        _bounded_put(state.pending_actions, instance_id, waiting)


def _bounded_actions(record: InstanceRecord, event_id: str, action: str) -> None:
    record.actions[event_id] = action
    while len(record.actions) > ACTIONS_LIMIT:
        del record.actions[next(iter(record.actions))]


@folds.on(InstanceDeletionRequested)
def _deletion_requested(
    state: ComputeState, envelope: Envelope, event: InstanceDeletionRequested
) -> None:
    instance_id = envelope.aggregate_id
    if instance_id in state.deleted:
        return
    record = state.instances.get(instance_id)
    if record is not None:
        if record.deletion_event_id is None:
            record.deletion_event_id = envelope.event_id
    elif instance_id not in state.pending_deletions:
        _bounded_put(state.pending_deletions, instance_id, envelope.event_id)


@folds.on(InstanceDeleted)
def _deleted(state: ComputeState, envelope: Envelope, event: InstanceDeleted) -> None:
    instance_id = envelope.aggregate_id
    state.pending_deletions.pop(instance_id, None)
    state.pending_actions.pop(instance_id, None)
    _bounded_put(state.deleted, instance_id, None)
    # Only the agent that destroyed the domain may drop its record: anyone else's deletion
    # (the scheduler's, for an instance it believes unplaced) leaves our domain to report.
    if event.host == state.host:
        state.instances.pop(instance_id, None)


# -- this agent's own reports ------------------------------------------------------------------


@folds.on(UsageSampled)
def _usage_sampled(state: ComputeState, envelope: Envelope, event: UsageSampled) -> None:
    if event.host != state.host:
        return
    if state.usage_sampled_at is None or envelope.occurred_at > state.usage_sampled_at:
        state.usage_sampled_at = envelope.occurred_at
    if (record := state.instances.get(envelope.aggregate_id)) is not None:
        record.usage_since = envelope.occurred_at


@folds.on(HostHeartbeat)
def _heartbeat(state: ComputeState, envelope: Envelope, event: HostHeartbeat) -> None:
    if envelope.aggregate_id == state.host:
        state.heartbeat_at = envelope.occurred_at


Outcome = (
    InstanceStarted
    | InstanceStopped
    | InstanceRebooted
    | InstanceRestarted
    | InstanceDomainLost
    | InstanceFailed
)
"""What this agent reports about its instances' domains."""


def _reported(state: ComputeState, envelope: Envelope, event: Outcome) -> InstanceRecord | None:
    """The record an outcome is about, when this agent reported it about one of its own; the
    power request it answers (its cause) no longer awaits an outcome."""
    if event.host != state.host:
        return None
    record = state.instances.get(envelope.aggregate_id)
    if record is None:
        return None
    if envelope.causation_id is not None:
        record.actions.pop(envelope.causation_id, None)
    if not isinstance(event, InstanceFailed):
        at = envelope.occurred_at
        record.changed_at = at if record.changed_at is None else max(record.changed_at, at)
    return record


@folds.on(InstanceStarted)
def _started(state: ComputeState, envelope: Envelope, event: InstanceStarted) -> None:
    if (record := _reported(state, envelope, event)) is not None:
        record.status, record.domain_lost = "running", False
        record.usage_since = envelope.occurred_at  # a fresh QEMU process: counters restart
        record.restarting = False
        if record.resize_flow is None:
            record.resize_ran = False  # a failed resize's guest started again


@folds.on(InstanceRestarted)
def _restarted(state: ComputeState, envelope: Envelope, event: InstanceRestarted) -> None:
    if (record := _reported(state, envelope, event)) is not None:
        record.status, record.domain_lost, record.restarting = "running", False, False
        record.usage_since = envelope.occurred_at


@folds.on(InstanceRebooted)
def _rebooted(state: ComputeState, envelope: Envelope, event: InstanceRebooted) -> None:
    if (record := _reported(state, envelope, event)) is not None:
        # The same QEMU process (or a fresh one after a hard reboot): either way billing
        # diffs cumulative counters, so the usage period goes on.
        record.status, record.domain_lost = "running", False


@folds.on(InstanceStopped)
def _stopped(state: ComputeState, envelope: Envelope, event: InstanceStopped) -> None:
    if (record := _reported(state, envelope, event)) is not None:
        record.status, record.domain_lost = "stopped", False
        # A stop nobody here asked for: the restart policy may start it again (`core.power`).
        record.restarting = record.restarts_after(event.cause)


@folds.on(InstanceDomainLost)
def _domain_lost(state: ComputeState, envelope: Envelope, event: InstanceDomainLost) -> None:
    if (record := _reported(state, envelope, event)) is not None:
        record.domain_lost = True


@folds.on(InstanceFailed)
def _failed(state: ComputeState, envelope: Envelope, event: InstanceFailed) -> None:
    if (record := _reported(state, envelope, event)) is None:
        return
    if event.phase == "restart":
        record.restarting = False  # it stays stopped; a start request may try again
    if event.phase == "spawn" and state.provided_by(record, envelope.causation_id):
        # The spawn of this placement failed (decided on whichever event completed its
        # prerequisites): the scheduler places it elsewhere.
        _leave(state, record)
    elif event.phase in FINAL_PHASES:
        _leave(state, record)  # never spawned, and the scheduler gives up on it
    elif event.phase == "delete" and envelope.causation_id == record.deletion_event_id:
        record.deletion_event_id = None  # a new request may try again


# -- boot volumes, ports and networks: what other services made for the instances -------------


@folds.on(VolumeCreated)
def _volume_created(state: ComputeState, envelope: Envelope, event: VolumeCreated) -> None:
    if event.instance_id is None:
        return
    volume_id = boot_volume_id(event.instance_id)
    if volume_id not in state.boot_volumes:
        state.boot_volumes[volume_id] = envelope.event_id


@folds.on(VolumeFailed)
def _volume_failed(state: ComputeState, envelope: Envelope, event: VolumeFailed) -> None:
    if event.operation == "create":
        _bounded_put(state.volume_failures, envelope.aggregate_id, event.reason)


@folds.on(VolumeDeleted)
def _volume_deleted(state: ComputeState, envelope: Envelope, event: VolumeDeleted) -> None:
    state.boot_volumes.pop(envelope.aggregate_id, None)
    state.volume_failures.pop(envelope.aggregate_id, None)


@folds.on(PortBound)
def _port_bound(state: ComputeState, envelope: Envelope, event: PortBound) -> None:
    if event.host != state.host:
        return
    key = envelope.aggregate_id
    known = state.bound_ports.get(key)
    # A repeated report of the same binding keeps the event that first provided it.
    if known is None or (known.mac, known.tap) != (event.mac, event.tap):
        state.bound_ports[key] = PortBinding(
            event.mac, event.tap, envelope.event_id, event.network_id, tuple(event.ips)
        )


@folds.on(NetworkCreated)
def _network_created(state: ComputeState, envelope: Envelope, event: NetworkCreated) -> None:
    state.networks[envelope.aggregate_id] = (event.cidr, event.gateway_ip)


@folds.on(NetworkDeleted)
def _network_deleted(state: ComputeState, envelope: Envelope, event: NetworkDeleted) -> None:
    state.networks.pop(envelope.aggregate_id, None)


@folds.on(PortUnbound)
def _port_unbound(state: ComputeState, envelope: Envelope, event: PortUnbound) -> None:
    if event.host == state.host:
        state.bound_ports.pop(envelope.aggregate_id, None)


@folds.on(PortDeleted)
def _port_deleted(state: ComputeState, envelope: Envelope, event: PortDeleted) -> None:
    state.bound_ports.pop(envelope.aggregate_id, None)
    state.port_failures.pop(envelope.aggregate_id, None)


@folds.on(PortAllocationFailed)
def _port_allocation_failed(
    state: ComputeState, envelope: Envelope, event: PortAllocationFailed
) -> None:
    _bounded_put(state.port_failures, envelope.aggregate_id, event.reason)


@folds.on(PortBindingFailed)
def _port_binding_failed(state: ComputeState, envelope: Envelope, event: PortBindingFailed) -> None:
    if event.host == state.host:
        _bounded_put(state.port_failures, envelope.aggregate_id, event.reason)


folds.include(volume_folds)
folds.include(console_folds)
folds.include(migration_folds)
folds.include(evacuation_folds)
folds.include(resize_folds)

evolve = folds.evolve
"""Fold one event into the agent's state (pure, deterministic)."""
