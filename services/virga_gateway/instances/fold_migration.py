"""How a live migration folds into the projection: MIGRATING while the scheduler's flow runs
(FlowStarted to FlowCompleted or FlowFailed, on its topic), the new host after. An evacuation
folds alike (EVACUATING; its destination's InstanceRebuilt gives the new host).

The flow's events are keyed by the flow id; FlowStarted says which instance (`subject`) and
each instance remembers the flow it runs, so the flow's end finds it. The destination shows
as the instance's host once its agent reports the guest moved (InstanceMigrated) and the
scheduler moved its claim (MigrationClaimMoved). Every one of these events, and the steps'
commands and answers keyed by the instance, are in the instance's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from virga_events import Envelope
from virga_events.catalog import api, compute, flows, network, scheduler, storage
from virga_gateway.hosts.fold import host_record
from virga_gateway.instances.fold import instance_record, record_history
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

LIVE_MIGRATION = "live-migration"
"""`FlowStarted.definition` of the scheduler's live migrations."""
EVACUATION = "evacuation"
"""`FlowStarted.definition` of the scheduler's evacuations (EVACUATING while it runs)."""

folds: Folds[GatewayState] = Folds()


@folds.on(api.LiveMigrationRequested)
def _requested(state: GatewayState, env: Envelope, event: api.LiveMigrationRequested) -> None:
    instance_record(state, env).migration_requested = event.flow_id or env.event_id


@folds.on(api.EvacuationRequested)
def _evacuation_requested(
    state: GatewayState, env: Envelope, event: api.EvacuationRequested
) -> None:
    instance = instance_record(state, env)
    instance.migration_requested = event.flow_id or env.event_id
    instance.evacuating, instance.evacuating_to = True, None


@folds.on(flows.FlowStarted)
def _started(state: GatewayState, env: Envelope, event: flows.FlowStarted) -> None:
    if event.definition not in (LIVE_MIGRATION, EVACUATION):
        return
    if event.subject not in state.instances:
        return
    instance = instance_record(state, env, event.subject)
    instance.migration_started, instance.migrating = env.aggregate_id, True
    instance.evacuating, instance.evacuating_to = event.definition == EVACUATION, None


def _ended(
    state: GatewayState, env: Envelope, event: flows.FlowCompleted | flows.FlowFailed
) -> None:
    instance = state.instances.get(event.subject)
    if instance is not None and instance.migration_started == env.aggregate_id:
        ended = instance_record(state, env, event.subject)
        ended.migrating, ended.evacuating_to = False, None


folds.add(flows.FlowCompleted, _ended)
folds.add(flows.FlowFailed, _ended)


@folds.on(compute.InstanceMigrated)
def _migrated(state: GatewayState, env: Envelope, event: compute.InstanceMigrated) -> None:
    instance_record(state, env).compute_host = event.destination


@folds.on(scheduler.MigrationDestinationClaimed)
def _destination_claimed(
    state: GatewayState, env: Envelope, event: scheduler.MigrationDestinationClaimed
) -> None:
    instance = state.instances.get(env.aggregate_id)
    if instance is None or not instance.evacuating:
        return
    if instance.migration_started == event.flow_id:
        instance_record(state, env).evacuating_to = event.host


@folds.on(compute.InstanceRebuilt)
def _rebuilt(state: GatewayState, env: Envelope, event: compute.InstanceRebuilt) -> None:
    instance_record(state, env).compute_host = event.host


@folds.on(scheduler.MigrationClaimMoved)
def _claim_moved(state: GatewayState, env: Envelope, event: scheduler.MigrationClaimMoved) -> None:
    instance = instance_record(state, env)
    if instance.placed_on == event.source:
        instance.placed_on = event.destination
    claims = state.claims.get(instance.id, {})
    flavor = claims.pop(event.source, None)
    if flavor is not None and event.destination not in claims:
        claims[event.destination] = flavor
        host_record(state, event.source).allocated.add(flavor, -1)
        host_record(state, event.destination).allocated.add(flavor)


# -- history ------------------------------------------------------------------------------

history: Folds[GatewayState] = Folds()
"""The migration's events in its instance's history (folded after every other fold)."""


def _flow_event(state: GatewayState, env: Envelope, event: Any) -> None:
    instance = state.instances.get(event.subject)
    if instance is not None and instance.migration_started == env.aggregate_id:
        record_history(state, env, event.subject)


def _instance_event(state: GatewayState, env: Envelope, event: Any) -> None:
    record_history(state, env)


for _flow_kind in (flows.FlowStarted, flows.FlowCompleted, flows.FlowFailed):
    history.add(_flow_kind, _flow_event)
for _kind in (
    api.LiveMigrationRequested,
    scheduler.MigrationDestinationClaimed,
    scheduler.MigrationDestinationRefused,
    scheduler.MigrationDestinationReleased,
    scheduler.MigrationPortPlumbRequested,
    network.MigrationPortPlumbed,
    network.MigrationPortPlumbingFailed,
    scheduler.InstanceMigrationRequested,
    compute.InstanceMigrated,
    compute.InstanceMigrationFailed,
    scheduler.MigrationPortSwitchRequested,
    network.MigrationPortSwitched,
    scheduler.MigrationClaimMoved,
    api.EvacuationRequested,
    scheduler.InstanceDisksFenceRequested,
    storage.InstanceDisksFenced,
    storage.InstanceDisksFenceFailed,
    scheduler.InstanceRebuildRequested,
    compute.InstanceRebuilt,
    compute.InstanceRebuildFailed,
):
    history.add(_kind, _instance_event)
