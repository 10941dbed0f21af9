"""A cold resize as a compute agent takes part in it: the `stop` and `redefine` steps of the
scheduler's flow (`virga_scheduler.core.resize`), and the undo of the stop. Pure: the fold
and the decisions.

- `stop` (InstanceResizeStopRequested naming this host): a running guest is stopped
  (`StopForResize`), answered InstanceResizeStopped{was_running}; a stopped one is answered
  at once. From the request until the flow ends the hypervisor's reports about the
  instance are left alone (`InstanceRecord.resize_flow`, `core.power`).
- undo (InstanceResizeRestartRequested naming this host): a guest the stop stopped is
  started again, with its old definition (`RestartAfterResize`); if its port moved away (a
  resize to another host undone after `switch_port`), once the port is bound here again.
- `redefine` in place (InstanceRedefineRequested whose placement is on this host, the
  instance's own): the stopped domain is defined again with the new flavor's vCPUs and
  memory and started if it ran (`Redefine`), answered InstanceResized, or
  InstanceResizeFailed with nothing changed.
- `redefine` to another host: the **new host's** agent takes the instance as placed there,
  with the new flavor (`core.evacuation.arrive`, as an evacuation's rebuild does) and, its
  boot volume known and its port switched here, defines it from its existing disks and
  starts it if it ran (`MoveIn`): InstanceResized, or InstanceResizeFailed with nothing left
  defined here. The **old host's** agent leaves its stopped domain alone until the flow's
  ResizeClaimMoved names it as the source: then it forgets the instance and undefines the
  domain (`RemoveStale`, disks kept, at once and at each start until it is gone). Before
  that, a failed flow finds the guest on its old host as it was, with its old flavor.
"""

from __future__ import annotations

from collections.abc import Sequence

from virga_compute.core.evacuation import arrive
from virga_compute.core.model import TOMBSTONE_LIMIT, ComputeState, InstanceRecord
from virga_compute.effects.intents import Redefine, RemoveStale, RestartAfterResize, StopForResize
from virga_events import Envelope
from virga_events.catalog.compute import (
    InstanceResized,
    InstanceResizeFailed,
    InstanceResizeStopped,
)
from virga_events.catalog.scheduler import (
    InstanceRedefineRequested,
    InstanceResizeRestartRequested,
    InstanceResizeStopRequested,
    ResizeClaimMoved,
)
from virga_runtime.folding import Folds
from virga_runtime.service import Emit, Intent

folds: Folds[ComputeState] = Folds()

RESIZE_STEPS = (
    InstanceResizeStopRequested,
    InstanceResizeRestartRequested,
    InstanceRedefineRequested,
    ResizeClaimMoved,
)
"""The scheduler's commands (and its last event) of a resize a compute agent answers
(`decide_resize`)."""


def moves_in(state: ComputeState, event: InstanceRedefineRequested) -> bool:
    """Whether the request moves the instance here from another host."""
    return event.placement.host == state.host and event.source != state.host


@folds.on(InstanceResizeStopRequested)
def _stop_requested(
    state: ComputeState, envelope: Envelope, event: InstanceResizeStopRequested
) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if event.host == state.host and record is not None and record.resize_flow is None:
        record.resize_flow, record.resize_ran = event.flow_id, False


@folds.on(InstanceResizeStopped)
def _stopped(state: ComputeState, envelope: Envelope, event: InstanceResizeStopped) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if event.host == state.host and record is not None and record.resize_flow == event.flow_id:
        record.status, record.resize_ran = "stopped", event.was_running
        record.changed_at = envelope.occurred_at


@folds.on(InstanceRedefineRequested)
def _redefine_requested(
    state: ComputeState, envelope: Envelope, event: InstanceRedefineRequested
) -> None:
    instance_id = envelope.aggregate_id
    if not moves_in(state, event) or instance_id in state.instances or instance_id in state.deleted:
        return
    record = arrive(state, envelope, event.placement, event.flow_id, event.step)
    record.resize_flow, record.resize_ran = event.flow_id, event.start
    record.resize_flavor = event.placement.flavor


@folds.on(InstanceResizeFailed)
def _resize_failed(state: ComputeState, envelope: Envelope, event: InstanceResizeFailed) -> None:
    """A move here that failed: nothing of it stays here (its old host keeps it)."""
    instance_id = envelope.aggregate_id
    rebuilding = state.rebuilding.get(instance_id)
    if event.host != state.host or rebuilding is None or rebuilding[0] != event.flow_id:
        return
    del state.rebuilding[instance_id]
    state.instances.pop(instance_id, None)


@folds.on(ResizeClaimMoved)
def _claim_moved(state: ComputeState, envelope: Envelope, event: ResizeClaimMoved) -> None:
    """The resize moved the instance from here: its stopped domain here is stale."""
    record = state.instances.get(envelope.aggregate_id)
    if event.source != state.host or event.destination == state.host or record is None:
        return
    del state.instances[envelope.aggregate_id]
    state.evacuated[envelope.aggregate_id] = event.flow_id
    while len(state.evacuated) > TOMBSTONE_LIMIT:
        del state.evacuated[next(iter(state.evacuated))]


@folds.on(InstanceResized)
def _resized(state: ComputeState, envelope: Envelope, event: InstanceResized) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if event.host != state.host or record is None or record.resize_flow != event.flow_id:
        return
    state.rebuilding.pop(envelope.aggregate_id, None)  # a move here: arrived
    record.vcpus, record.ram_mb = event.flavor.vcpus, event.flavor.ram_mb
    record.status = "running" if event.running else "stopped"
    record.changed_at = envelope.occurred_at
    if event.running:
        record.usage_since = envelope.occurred_at  # a fresh QEMU process: counters restart
    record.resize_flow, record.resize_ran, record.resize_flavor = None, False, None


def decide_resize(state: ComputeState, envelope: Envelope) -> Sequence[Intent]:
    """This host's part in a resize step (nothing for a step another host carries out)."""
    event, instance_id = envelope.payload, envelope.aggregate_id
    record = state.mine(instance_id)
    if isinstance(event, ResizeClaimMoved):
        if state.evacuated.get(instance_id) != event.flow_id:
            return ()
        return [RemoveStale(instance_id, state.host)]
    if isinstance(event, InstanceResizeRestartRequested):
        if event.host != state.host or record is None or not record.resize_ran:
            return ()
        if record.port_id is not None and record.port_id not in state.bound_ports:
            return ()  # its port is on its way back: `restart_when_bound` starts it
        return [RestartAfterResize(instance_id, record.tenant_id, state.host)]
    if isinstance(event, InstanceResizeStopRequested):
        if event.host != state.host:
            return ()
        flow_id, step = event.flow_id, event.step
        if record is None or record.deletion_event_id is not None:
            return _failed(envelope, state.host, step, f"instance {instance_id} is not here")
        if record.resize_flow != flow_id:
            return ()  # another resize holds it; the gateway lets only one run
        if record.status != "running" or record.domain_lost:
            stopped = InstanceResizeStopped(
                flow_id=flow_id, step=step, host=state.host, was_running=False
            )
            return [Emit(stopped, instance_id, envelope.tenant_id)]
        return [StopForResize(instance_id, record.tenant_id, state.host, flow_id, step)]
    if isinstance(event, InstanceRedefineRequested):
        placement = event.placement
        if placement.host != state.host:
            return ()
        flow_id, step = event.flow_id, event.step
        if event.source != state.host:
            return _move_in(state, envelope)
        if record is None or record.resize_flow != flow_id:
            return _failed(envelope, state.host, step, f"instance {instance_id} is not held here")
        return [
            Redefine(
                instance_id,
                record.tenant_id,
                state.host,
                flow_id,
                step,
                placement.flavor,
                event.start,
            )
        ]
    return ()


def _move_in(state: ComputeState, envelope: Envelope) -> Sequence[Intent]:
    """The answer to a repeated or impossible move here; () when the record this request made
    is to be defined (`core.decide` does, as for a placement, once its prerequisites are here)."""
    event, instance_id = envelope.payload, envelope.aggregate_id
    record = state.mine(instance_id)
    if record is None:
        return _failed(envelope, state.host, event.step, f"instance {instance_id} is deleted")
    if record.scheduled_event_id == envelope.event_id:
        return ()
    if record.resize_flow is None and instance_id not in state.rebuilding:
        resized = InstanceResized(
            flow_id=event.flow_id,
            step=event.step,
            host=state.host,
            flavor=event.placement.flavor,
            running=record.status == "running",
        )
        return [Emit(resized, instance_id, envelope.tenant_id)]  # a re-sent request
    return ()  # the request that made it is being carried out


def restart_when_bound(state: ComputeState, record: InstanceRecord) -> Sequence[Intent]:
    """A guest a failed resize stopped, whose port just came back here: started again."""
    if not record.resize_ran or record.status != "stopped":
        return ()
    return [RestartAfterResize(record.instance_id, record.tenant_id, state.host)]


def _failed(envelope: Envelope, host: str, step: str, reason: str) -> Sequence[Intent]:
    flow_id = envelope.payload.flow_id
    failed = InstanceResizeFailed(flow_id=flow_id, step=step, host=host, reason=reason)
    return [Emit(failed, envelope.aggregate_id, envelope.tenant_id)]
