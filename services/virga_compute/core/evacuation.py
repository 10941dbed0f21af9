"""Evacuation as a compute agent takes part in it (the scheduler's flow,
`virga_scheduler.core.evacuation`). Pure: the fold and the decision.

- The **destination** agent (`InstanceRebuildRequested.destination` is its host) takes the
  instance as placed here (`placement` of the request) and, once its boot volume and port
  are here (the port was switched to this host before), defines and starts it from its
  existing disks (`Rebuild`): InstanceStarted and InstanceRebuilt, or InstanceRebuildFailed
  (nothing is left defined). Only the request that made the record rebuilds; a repeated one
  is answered InstanceRebuilt again once it runs.
- The **dead host's** agent, back again (or still alive without its heartbeats), reads the
  flow's MigrationClaimMoved naming it as the source: the instance is no longer its own. It
  forgets it and removes its stale domain (`RemoveStale`, at once, and at every start until
  the domain is gone) without ever starting it: the guest runs exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

from virga_compute.core.model import TOMBSTONE_LIMIT, ComputeState, InstanceRecord
from virga_compute.effects.intents import RemoveStale
from virga_events import Envelope
from virga_events.catalog.compute import (
    InstanceRebuildFailed,
    InstanceRebuilt,
    InstanceResizeFailed,
)
from virga_events.catalog.scheduler import (
    InstanceRebuildRequested,
    InstanceScheduled,
    MigrationClaimMoved,
)
from virga_runtime.folding import Folds
from virga_runtime.service import Emit, Intent

folds: Folds[ComputeState] = Folds()


@folds.on(InstanceRebuildRequested)
def _requested(state: ComputeState, envelope: Envelope, event: InstanceRebuildRequested) -> None:
    instance_id = envelope.aggregate_id
    if event.destination != state.host or instance_id in state.instances:
        return
    if instance_id in state.deleted:
        return
    arrive(state, envelope, event.placement, event.flow_id, event.step)


def arrive(
    state: ComputeState, envelope: Envelope, placed: InstanceScheduled, flow_id: str, step: str
) -> InstanceRecord:
    """The record of an instance a flow (re)builds here from its existing disks, as placed
    (an evacuation's rebuild, a resize's move): defined once its boot volume and port are
    here, by the request that made it (`scheduled_event_id`)."""
    instance_id = envelope.aggregate_id
    record = state.instances[instance_id] = InstanceRecord(
        instance_id=instance_id,
        tenant_id=envelope.tenant_id,
        name=placed.name,
        vcpus=placed.flavor.vcpus,
        ram_mb=placed.flavor.ram_mb,
        attempt=placed.attempt,
        scheduled_event_id=envelope.event_id,
        image=placed.image,
        network=placed.network,
        restart_policy=placed.restart_policy,
        hostname=placed.hostname,
        key_name=placed.key_name,
        public_keys=tuple(placed.public_keys),
        user_data=placed.user_data,
        config_drive=placed.config_drive,
    )
    state.rebuilding[instance_id] = (flow_id, step)
    state.evacuated.pop(instance_id, None)  # back here after it left once
    return record


@folds.on(InstanceRebuilt)
def _rebuilt(state: ComputeState, envelope: Envelope, event: InstanceRebuilt) -> None:
    if event.host == state.host:
        state.rebuilding.pop(envelope.aggregate_id, None)


@folds.on(InstanceRebuildFailed)
def _rebuild_failed(state: ComputeState, envelope: Envelope, event: InstanceRebuildFailed) -> None:
    if event.host != state.host or envelope.aggregate_id not in state.rebuilding:
        return
    del state.rebuilding[envelope.aggregate_id]
    state.instances.pop(envelope.aggregate_id, None)  # nothing of it stays defined here


@folds.on(MigrationClaimMoved)
def _claim_moved(state: ComputeState, envelope: Envelope, event: MigrationClaimMoved) -> None:
    """The instance's claim left this host by another flow than a live migration this agent
    carried out (which forgot it already): an evacuation rebuilt it elsewhere."""
    record = state.instances.get(envelope.aggregate_id)
    if event.source != state.host or record is None or record.migration_flow == event.flow_id:
        return
    del state.instances[envelope.aggregate_id]
    state.evacuated[envelope.aggregate_id] = event.flow_id
    while len(state.evacuated) > TOMBSTONE_LIMIT:
        del state.evacuated[next(iter(state.evacuated))]


def decide_rebuild_request(
    state: ComputeState, envelope: Envelope[InstanceRebuildRequested]
) -> Sequence[Intent] | None:
    """The answer to a repeated or impossible request; None: the record this request made
    spawns as any placement does (`Rebuild` once its prerequisites are here)."""
    event, instance_id = envelope.payload, envelope.aggregate_id
    if event.destination != state.host:
        return ()
    record = state.mine(instance_id)
    if record is None:
        failed = InstanceRebuildFailed(
            flow_id=event.flow_id,
            step=event.step,
            host=state.host,
            reason=f"instance {instance_id} is deleted",
        )
        return [Emit(failed, instance_id, envelope.tenant_id)]
    if record.scheduled_event_id == envelope.event_id:
        return None
    if record.status == "running" and instance_id not in state.rebuilding:
        again = InstanceRebuilt(flow_id=event.flow_id, step=event.step, host=state.host)
        return [Emit(again, instance_id, envelope.tenant_id)]
    return ()  # the request that made it is being carried out


def rebuild_failed(state: ComputeState, record: InstanceRecord, reason: str) -> Emit:
    """InstanceRebuildFailed for the evacuation rebuilding `record` here, InstanceResizeFailed
    for the resize moving it here (its record goes)."""
    flow_id, step = state.rebuilding[record.instance_id]
    failed: InstanceRebuildFailed | InstanceResizeFailed
    if record.resize_flow == flow_id:
        failed = InstanceResizeFailed(flow_id=flow_id, step=step, host=state.host, reason=reason)
    else:
        failed = InstanceRebuildFailed(flow_id=flow_id, step=step, host=state.host, reason=reason)
    return Emit(failed, record.instance_id, record.tenant_id)


def decide_claim_moved(
    state: ComputeState, envelope: Envelope[MigrationClaimMoved]
) -> Sequence[Intent]:
    """Remove the stale domain of an instance evacuated from this host."""
    instance_id = envelope.aggregate_id
    if state.evacuated.get(instance_id) != envelope.payload.flow_id:
        return ()
    return [RemoveStale(instance_id, state.host)]


def stale(state: ComputeState) -> list[Intent]:
    """At each start: remove what is left of every instance evacuated from here."""
    return [RemoveStale(instance_id, state.host) for instance_id in state.evacuated]
