"""A cold resize as a compute agent takes part in it: the `stop` and `redefine` steps of the
scheduler's flow (`virga_scheduler.core.resize`), and the undo of the stop. Pure: the fold
and the decisions.

- `stop` (InstanceResizeStopRequested naming this host): a running guest is stopped
  (`StopForResize`), answered InstanceResizeStopped{was_running}; a stopped one is answered
  at once. From the request until the flow ends the hypervisor's reports about the
  instance are left alone (`InstanceRecord.resize_flow`, `core.power`).
- undo (InstanceResizeRestartRequested naming this host): a guest the stop stopped is
  started again, with its old definition (`RestartAfterResize`).
- `redefine` (InstanceRedefineRequested whose placement is on this host, the instance's
  own): the stopped domain is defined again with the new flavor's vCPUs and memory and
  started if it ran (`Redefine`), answered InstanceResized, or InstanceResizeFailed with
  nothing changed. A resize that moves hosts is answered InstanceResizeFailed by the new
  host's agent: moving a stopped guest (its boot volume and port) is not built yet, so the
  flow undoes its claim and the guest runs on where it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from virga_compute.core.model import ComputeState
from virga_compute.effects.intents import Redefine, RestartAfterResize, StopForResize
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
)
from virga_runtime.folding import Folds
from virga_runtime.service import Emit, Intent

folds: Folds[ComputeState] = Folds()

RESIZE_STEPS = (
    InstanceResizeStopRequested,
    InstanceResizeRestartRequested,
    InstanceRedefineRequested,
)
"""The scheduler's commands of a resize a compute agent answers (`decide_resize`)."""


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


@folds.on(InstanceResized)
def _resized(state: ComputeState, envelope: Envelope, event: InstanceResized) -> None:
    record = state.instances.get(envelope.aggregate_id)
    if event.host != state.host or record is None or record.resize_flow != event.flow_id:
        return
    record.vcpus, record.ram_mb = event.flavor.vcpus, event.flavor.ram_mb
    record.status = "running" if event.running else "stopped"
    record.changed_at = envelope.occurred_at
    if event.running:
        record.usage_since = envelope.occurred_at  # a fresh QEMU process: counters restart
    record.resize_flow, record.resize_ran = None, False


def decide_resize(state: ComputeState, envelope: Envelope) -> Sequence[Intent]:
    """This host's part in a resize step (nothing for a step another host carries out)."""
    event, instance_id = envelope.payload, envelope.aggregate_id
    record = state.mine(instance_id)
    if isinstance(event, InstanceResizeRestartRequested):
        if event.host != state.host or record is None or not record.resize_ran:
            return ()
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
            reason = "a resize that moves the instance to another host is not built yet"
            return _failed(envelope, state.host, step, reason)
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


def _failed(envelope: Envelope, host: str, step: str, reason: str) -> Sequence[Intent]:
    flow_id = envelope.payload.flow_id
    failed = InstanceResizeFailed(flow_id=flow_id, step=step, host=host, reason=reason)
    return [Emit(failed, envelope.aggregate_id, envelope.tenant_id)]
