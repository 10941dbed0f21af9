"""How a cold resize folds into the projection: RESIZING from the request until the
scheduler's flow ends (FlowStarted to FlowCompleted or FlowFailed, on its topic), the new
flavor once the scheduler moved the instance's claim to it (ResizeClaimMoved).

Quotas count the larger of the old and the asked flavor from the request until the claim
moved or the resize was undone (ResizeRefused, ResizeClaimReleased): those events are keyed
by the instance, so its quota share is recounted with each. Every event of the flow is in
the instance's history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from virga_events import Envelope
from virga_events.catalog import api, compute, flows, scheduler, storage
from virga_gateway.hosts.fold import host_record
from virga_gateway.instances.fold import instance_record, record_history
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

RESIZE = "resize"
"""`FlowStarted.definition` of the scheduler's resizes."""

folds: Folds[GatewayState] = Folds()


@folds.on(api.InstanceResizeRequested)
def _requested(state: GatewayState, env: Envelope, event: api.InstanceResizeRequested) -> None:
    instance_record(state, env).resize_flavor = event.flavor


@folds.on(flows.FlowStarted)
def _started(state: GatewayState, env: Envelope, event: flows.FlowStarted) -> None:
    if event.definition != RESIZE or event.subject not in state.instances:
        return
    instance = instance_record(state, env, event.subject)
    instance.resize_started, instance.resizing = env.aggregate_id, True


def _ended(
    state: GatewayState, env: Envelope, event: flows.FlowCompleted | flows.FlowFailed
) -> None:
    instance = state.instances.get(event.subject)
    if instance is not None and instance.resize_started == env.aggregate_id:
        ended = instance_record(state, env, event.subject)
        ended.resizing, ended.resizing_to = False, None


folds.add(flows.FlowCompleted, _ended)
folds.add(flows.FlowFailed, _ended)


@folds.on(scheduler.MigrationPortSwitchRequested)
def _port_switched(
    state: GatewayState, env: Envelope, event: scheduler.MigrationPortSwitchRequested
) -> None:
    """A resize moving hosts sends the port (there, or back): that host reports on it."""
    instance = state.instances.get(env.aggregate_id)
    if instance is not None and instance.resizing and instance.resize_started == event.flow_id:
        instance_record(state, env).resizing_to = event.host


def _undone(state: GatewayState, env: Envelope, event: Any) -> None:
    instance_record(state, env).resize_flavor = None


folds.add(scheduler.ResizeRefused, _undone)
folds.add(scheduler.ResizeClaimReleased, _undone)


@folds.on(compute.InstanceResizeStopped)
def _stopped(state: GatewayState, env: Envelope, event: compute.InstanceResizeStopped) -> None:
    instance_record(state, env).compute_status = "STOPPED"


@folds.on(compute.InstanceResized)
def _resized(state: GatewayState, env: Envelope, event: compute.InstanceResized) -> None:
    instance = instance_record(state, env)
    instance.compute_host = event.host
    instance.compute_status = "RUNNING" if event.running else "STOPPED"
    instance.compute_fault = None


@folds.on(scheduler.ResizeClaimMoved)
def _claim_moved(state: GatewayState, env: Envelope, event: scheduler.ResizeClaimMoved) -> None:
    instance = instance_record(state, env)
    instance.flavor, instance.resize_flavor = event.flavor, None
    if instance.placed_on == event.source:
        instance.placed_on = event.destination
    claims = state.claims.get(instance.id, {})
    old = claims.pop(event.source, None)
    if old is not None:
        host_record(state, event.source).allocated.add(old, -1)
        claims[event.destination] = event.flavor
        host_record(state, event.destination).allocated.add(event.flavor)


# -- history ------------------------------------------------------------------------------

history: Folds[GatewayState] = Folds()
"""The resize's events in its instance's history (folded after every other fold)."""


def _flow_event(state: GatewayState, env: Envelope, event: Any) -> None:
    instance = state.instances.get(event.subject)
    if instance is not None and instance.resize_started == env.aggregate_id:
        record_history(state, env, event.subject)


def _instance_event(state: GatewayState, env: Envelope, event: Any) -> None:
    record_history(state, env)


for _flow_kind in (flows.FlowStarted, flows.FlowCompleted, flows.FlowFailed):
    history.add(_flow_kind, _flow_event)
for _kind in (
    api.InstanceResizeRequested,
    scheduler.ResizeClaimed,
    scheduler.ResizeRefused,
    scheduler.ResizeClaimReleased,
    scheduler.InstanceResizeStopRequested,
    compute.InstanceResizeStopped,
    scheduler.InstanceResizeRestartRequested,
    scheduler.BootVolumeGrowRequested,
    storage.BootVolumeGrown,
    storage.BootVolumeGrowFailed,
    scheduler.InstanceRedefineRequested,
    compute.InstanceResized,
    compute.InstanceResizeFailed,
    scheduler.ResizeClaimMoved,
):
    history.add(_kind, _instance_event)
