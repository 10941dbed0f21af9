"""Live migration as a compute agent takes part in it: the `migrate` step of the scheduler's
flow (`virga_scheduler.core.migration`). Pure: the fold and the decision.

- The **source** agent (`InstanceMigrationRequested.source` is its host) carries the step out:
  `MigrateLive` through the driver's `migrate_live` to the destination's `migration_uri` and
  `migration_address` (from the destination's HostRegistered, which the scheduler copies into
  the request), answered InstanceMigrated or InstanceMigrationFailed. Only the request that
  started the migration migrates (`InstanceRecord.migration_event_id`); a request for a flow
  already carried out is answered InstanceMigrated again (`ComputeState.migrated`), never
  moved twice. Its own InstanceMigrated makes the agent forget the instance without
  destroying anything: the domain (and its definition) now lives on the destination.
- The **destination** agent keeps the instance's placement there (`placement` of the request)
  in `ComputeState.incoming` and adopts it once the flow's `migrate` step completed
  (FlowStepCompleted on the scheduler's topic): from then on it syncs its power state, serves
  its console and deletes it. A failed flow drops it.

While a migration runs, the hypervisor's reports about the instance are left alone on the
source (`core.power`), and before adoption the destination has no record to report about.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from virga_compute.config import ComputeConfig
from virga_compute.core.model import TOMBSTONE_LIMIT, ComputeState, InstanceRecord
from virga_compute.effects.intents import MigrateLive
from virga_events import Envelope
from virga_events.catalog.compute import InstanceMigrated, InstanceMigrationFailed
from virga_events.catalog.flows import FlowFailed, FlowStepCompleted
from virga_events.catalog.scheduler import InstanceMigrationRequested
from virga_runtime.folding import Folds
from virga_runtime.service import Emit, Intent

MIGRATE_STEP = "migrate"
"""The flow's step the compute agents take part in."""

folds: Folds[ComputeState] = Folds()


def _bounded(table: dict[str, Any]) -> None:
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]


@folds.on(InstanceMigrationRequested)
def _requested(state: ComputeState, envelope: Envelope, event: InstanceMigrationRequested) -> None:
    record = state.instances.get(envelope.aggregate_id)
    ended = event.flow_id in state.ended
    if event.source == state.host and record is not None:
        if record.migration_flow is None and event.flow_id not in state.migrated and not ended:
            record.migration_flow = event.flow_id
            record.migration_event_id = envelope.event_id
    elif event.destination == state.host and event.placement is not None:
        if event.flow_id in state.incoming or envelope.aggregate_id in state.deleted:
            return
        if ended and state.ended[event.flow_id] is None:
            return  # the flow failed before this agent read its request
        placed = event.placement
        state.incoming[event.flow_id] = InstanceRecord(
            instance_id=envelope.aggregate_id,
            tenant_id=envelope.tenant_id,
            name=placed.name,
            vcpus=placed.flavor.vcpus,
            ram_mb=placed.flavor.ram_mb,
            attempt=placed.attempt,
            scheduled_event_id=envelope.event_id,
            image=placed.image,
            network=placed.network,
            status="running",
            restart_policy=placed.restart_policy,
            hostname=placed.hostname,
            key_name=placed.key_name,
            public_keys=tuple(placed.public_keys),
            user_data=placed.user_data,
            config_drive=placed.config_drive,
        )
        _bounded(state.incoming)
        completed_at = state.ended.pop(event.flow_id, None)
        if completed_at is not None:  # its `migrate` step completed before it was read here
            _adopt(state, state.incoming.pop(event.flow_id), completed_at)


@folds.on(InstanceMigrated)
def _migrated(state: ComputeState, envelope: Envelope, event: InstanceMigrated) -> None:
    if event.host != state.host:
        return
    state.migrated[event.flow_id] = (envelope.aggregate_id, event.destination, event.seconds)
    _bounded(state.migrated)
    record = state.instances.get(envelope.aggregate_id)
    if record is not None and record.migration_flow == event.flow_id:
        # It runs on the destination, whose agent adopts it: forgotten here, not destroyed.
        del state.instances[envelope.aggregate_id]


@folds.on(InstanceMigrationFailed)
def _migration_failed(
    state: ComputeState, envelope: Envelope, event: InstanceMigrationFailed
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if event.host == state.host and record is not None and record.migration_flow == event.flow_id:
        record.migration_flow = record.migration_event_id = None  # it runs on here


@folds.on(FlowStepCompleted)
def _step_completed(state: ComputeState, envelope: Envelope, event: FlowStepCompleted) -> None:
    if event.step != MIGRATE_STEP or event.late:
        return
    record = state.incoming.pop(envelope.aggregate_id, None)
    if record is None:
        # Its request not read yet (or not this host's): read later, it adopts at once.
        state.ended[envelope.aggregate_id] = envelope.occurred_at
        _bounded(state.ended)
        return
    _adopt(state, record, envelope.occurred_at)


def _adopt(state: ComputeState, record: InstanceRecord, at: datetime) -> None:
    """The instance a migration moved here is this agent's from `at` on."""
    if record.instance_id in state.deleted:
        return
    record.changed_at = at  # what the hypervisor said before is stale
    record.usage_since = at
    record.deletion_event_id = state.pending_deletions.pop(record.instance_id, None)
    state.instances[record.instance_id] = record


@folds.on(FlowFailed)
def _flow_failed(state: ComputeState, envelope: Envelope, event: FlowFailed) -> None:
    if state.incoming.pop(envelope.aggregate_id, None) is None:
        state.ended.setdefault(envelope.aggregate_id, None)  # stuck after `migrate`: it moved
        _bounded(state.ended)
    record = state.instances.get(event.subject)
    if record is not None and record.migration_flow == envelope.aggregate_id and not event.stuck:
        record.migration_flow = record.migration_event_id = None
    if record is not None and record.resize_flow == envelope.aggregate_id:
        # A failed resize (`core.resize`): its undo (a restart) was decided with the failure.
        record.resize_flow = None


def decide_migration(
    config: ComputeConfig, state: ComputeState, envelope: Envelope[InstanceMigrationRequested]
) -> Sequence[Intent]:
    """The source agent's answer to a request to migrate (nothing on any other host)."""
    event, instance_id = envelope.payload, envelope.aggregate_id
    if event.source != state.host:
        return ()

    def failed(reason: str) -> Sequence[Intent]:
        answer = InstanceMigrationFailed(
            flow_id=event.flow_id, step=event.step, host=state.host, reason=reason
        )
        return [Emit(answer, instance_id, envelope.tenant_id)]

    done = state.migrated.get(event.flow_id)
    if done is not None:
        moved_id, destination, seconds = done
        answer = InstanceMigrated(
            flow_id=event.flow_id,
            step=event.step,
            host=state.host,
            destination=destination,
            seconds=seconds,
        )
        return [Emit(answer, moved_id, envelope.tenant_id)]
    record = state.mine(instance_id)
    if record is None:
        return failed(f"instance {instance_id} is not on host {state.host}")
    if record.migration_event_id != envelope.event_id:
        return ()  # a repeated request while the migration it started runs: that one answers
    if record.deletion_event_id is not None:
        return failed(f"instance {instance_id} is being deleted")
    if record.status != "running" or record.domain_lost:
        return failed(f"instance {instance_id} is not running")
    uri = event.destination_uri
    if not uri:
        return failed(f"host {event.destination} cannot receive live migrations")
    address = event.migration_address or urlsplit(uri).hostname or ""
    return [
        MigrateLive(
            instance_id=instance_id,
            tenant_id=record.tenant_id,
            host=state.host,
            flow_id=event.flow_id,
            step=event.step,
            destination=event.destination,
            destination_uri=uri,
            migration_address=address,
            timeout=config.migration_timeout_seconds,
            destination_ceph=_identity(event),
        )
    ]


def _identity(event: InstanceMigrationRequested) -> tuple[str, str] | None:
    """The destination's Ceph identity, when it announced one (HostRegistered v4)."""
    user, secret = event.destination_ceph_user, event.destination_ceph_secret_uuid
    return (user, secret) if user is not None and secret is not None else None
