"""Evacuation of one instance whose host is down, as the scheduler runs it: the whole runbook.

The guest is rebuilt on another host from its RBD disks; its memory is lost (it boots again).
The scheduler hosts the flow because it owns claims; the dead host takes no part in it.

1. `claim`: the scheduler holds the instance's resources on the destination itself, at once
   (the asked host if it passes every filter, else the best host but the source):
   MigrationDestinationClaimed, or MigrationDestinationRefused. Undo:
   MigrationDestinationReleased.
2. `fence`, before anything opens the disks elsewhere: InstanceDisksFenceRequested to the
   storage service, which breaks every exclusive lock on the instance's RBD images (the old
   QEMU, if it still lives, is blocklisted and can no longer write): InstanceDisksFenced, or
   InstanceDisksFenceFailed. No undo: a fenced client stays cut off, and that is safe.
3. `switch_port`: MigrationPortSwitchRequested (the live migration's): the network moves the
   instance's port to the destination, whose agent binds it (PortBound) and answers
   MigrationPortSwitched. Undo: the same request back to the source.
4. `rebuild`, the pivot: InstanceRebuildRequested to the destination's compute agent, which
   defines and starts the guest from its disks: InstanceRebuilt, or InstanceRebuildFailed.
5. `release_source`: the scheduler moves the instance's claim to the destination itself:
   MigrationClaimMoved. The dead host's agent, back again, reads it and removes its stale
   domain without starting it: the guest runs exactly once.

A failure up to `rebuild` ends the flow `FlowFailed` with the reason: the port goes back, the
destination claim is released, and the instance stays where it was (its host down). From the
end of `fence` the scheduler counts the instance as the destination's for the host topics'
check (`evacuated_to`): the destination's agents report on it, the dead host's no longer may.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from virga_events import Envelope
from virga_events.catalog.api import EvacuationRequested
from virga_events.catalog.compute import InstanceRebuildFailed, InstanceRebuilt
from virga_events.catalog.network import MigrationPortSwitched
from virga_events.catalog.scheduler import (
    InstanceDisksFenceRequested,
    InstanceRebuildRequested,
    MigrationClaimMoved,
    MigrationDestinationClaimed,
    MigrationDestinationRefused,
    MigrationPortSwitchRequested,
)
from virga_events.catalog.storage import InstanceDisksFenced, InstanceDisksFenceFailed
from virga_runtime.flow_manager import FlowManager
from virga_runtime.flows import Flow, FlowDefinition, Step
from virga_runtime.service import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.migration import (
    Scheduling,
    claim_destination,
    release_destination,
    release_source,
)
from virga_scheduler.core.model import SchedulerState

log = structlog.get_logger(__name__)

EVACUATION = "evacuation"
"""The flow's name in its events (`FlowStarted.definition`)."""

FENCE_SECONDS = timedelta(seconds=120)
"""Longer than the storage driver's own wait for a cut-off client's watch to go (35 s)."""
AGENT_SECONDS = timedelta(seconds=60)
REBUILD_SECONDS = timedelta(seconds=180)


def _claim(ctx: Scheduling, flow: Flow) -> list[Emit]:
    """Hold the instance's resources on a destination, only while its source is down."""
    source = flow["source"]
    # An automatic evacuation starts in the decision that marks its host down (`host_down`).
    if source and source not in ctx.state.down and not flow.get("auto"):
        reason = f"host {source} of instance {flow.subject} is up: it is not evacuated"
        answer = MigrationDestinationRefused(flow_id=flow.flow_id, step="claim", reason=reason)
        return [Emit(answer, flow.subject, flow.tenant_id)]
    return claim_destination(ctx, flow, live=False)


def _fence(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = InstanceDisksFenceRequested(flow_id=flow.flow_id, step="fence", host=flow["source"])
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _switch_port(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = MigrationPortSwitchRequested(
        flow_id=flow.flow_id, step="switch_port", host=flow["destination"], source=flow["source"]
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _switch_back(ctx: Scheduling, flow: Flow) -> list[Emit]:
    back = MigrationPortSwitchRequested(
        flow_id=flow.flow_id, step="switch_back", host=flow["source"], source=flow["destination"]
    )
    return [Emit(back, flow.subject, flow.tenant_id)]


def _rebuild(ctx: Scheduling, flow: Flow) -> list[Emit]:
    """Ask the destination's agent, with the instance as it runs there (its placement)."""
    state, destination = ctx.state, flow["destination"]
    record, host = state.instances.get(flow.subject), state.hosts.get(destination)
    if record is None or record.requested is None or host is None:
        failed = InstanceRebuildFailed(
            flow_id=flow.flow_id,
            step="rebuild",
            host=destination,
            reason=f"instance {flow.subject} or host {destination} is unknown",
        )
        return [Emit(failed, flow.subject, flow.tenant_id)]
    asked = InstanceRebuildRequested(
        flow_id=flow.flow_id,
        step="rebuild",
        source=flow["source"],
        destination=destination,
        placement=record.placed_on(host, record.attempts),
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _from_destination(flow: Flow, event: MigrationPortSwitched | InstanceRebuilt) -> bool:
    return event.host == flow["destination"]


FLOW: FlowDefinition[Scheduling] = FlowDefinition(
    EVACUATION,
    (
        Step(
            "claim",
            _claim,
            completed_by=(MigrationDestinationClaimed,),
            failed_by=(MigrationDestinationRefused,),
            compensate=release_destination,
            result=lambda claimed: {"destination": claimed.host},
        ),
        Step(
            "fence",
            _fence,
            completed_by=(InstanceDisksFenced,),
            failed_by=(InstanceDisksFenceFailed,),
            timeout=FENCE_SECONDS,
            attempts=2,
        ),
        Step(
            "switch_port",
            _switch_port,
            completed_by=(MigrationPortSwitched,),
            timeout=AGENT_SECONDS,
            attempts=3,
            compensate=_switch_back,
            accepts=_from_destination,
        ),
        Step(
            "rebuild",
            _rebuild,
            completed_by=(InstanceRebuilt,),
            failed_by=(InstanceRebuildFailed,),
            timeout=REBUILD_SECONDS,
            accepts=_from_destination,
        ),
        Step("release_source", release_source, completed_by=(MigrationClaimMoved,), attempts=5),
    ),
    pivot="rebuild",
)

EVACUATIONS = FlowManager(FLOW)


def requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[EvacuationRequested]
) -> list[Emit]:
    """Start an evacuation of the instance (flow id: the request's, else its event id),
    unless a flow about it runs."""
    return start(
        config,
        state,
        envelope.aggregate_id,
        envelope.payload.flow_id or envelope.event_id,
        envelope.tenant_id,
        envelope.payload.host,
        envelope.occurred_at,
    )


def start(
    config: SchedulerConfig,
    state: SchedulerState,
    instance_id: str,
    flow_id: str,
    tenant_id: str | None,
    asked: str | None,
    now: datetime,
    *,
    auto: bool = False,
) -> list[Emit]:
    if any(flow.subject == instance_id for flow in state.flows.running()):
        log.info("evacuation_refused_flow_running", instance_id=instance_id)
        return []
    held = state.claims.get(instance_id)
    return EVACUATIONS.start(
        Scheduling(config, state),
        state.flows,
        EVACUATION,
        flow_id,
        subject=instance_id,
        tenant_id=tenant_id,
        inputs={
            "source": held.host if held is not None else "",
            "asked": asked or "",
            **({"auto": "host down"} if auto else {}),
        },
        now=now,
    )


def host_down(
    config: SchedulerConfig, state: SchedulerState, host: str, now: datetime
) -> list[Emit]:
    """Automatic evacuation of a host named in `SchedulerConfig.auto_evacuate`: one flow per
    instance placed on the host just marked down (ids `evacuate:<host>:<instance>:<time>`)."""
    if host not in config.auto_evacuate and "*" not in config.auto_evacuate:
        return []
    emits: list[Emit] = []
    for claim in sorted(state.claims.all(), key=lambda c: c.instance_id):
        record = state.instances.get(claim.instance_id)
        if claim.host != host or record is None or record.deletion_requested:
            continue
        flow_id = f"evacuate:{host}:{claim.instance_id}:{now.isoformat()}"
        log.info("auto_evacuation", host=host, instance_id=claim.instance_id, flow_id=flow_id)
        emits.extend(
            start(config, state, claim.instance_id, flow_id, record.tenant_id, None, now, auto=True)
        )
    return emits


def answered(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> list[Emit]:
    return EVACUATIONS.decide(Scheduling(config, state), state.flows, envelope)


def deadlines(config: SchedulerConfig, state: SchedulerState, now: datetime) -> list[Emit]:
    return EVACUATIONS.tick(Scheduling(config, state), state.flows, now)


def evacuated_to(state: SchedulerState, instance_id: str) -> str | None:
    """The destination of the instance's evacuation once its disks are fenced: that host's
    agents report on it from then on, the dead host's no longer."""
    for flow in state.flows.running():
        if flow.subject == instance_id and flow.definition == EVACUATION and "fence" in flow.done:
            return flow.get("destination")
    return None
