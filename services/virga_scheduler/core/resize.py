"""Cold resize of one instance to another flavor, as the scheduler runs it: the whole runbook.

The scheduler hosts the flow because it owns what must never leak: claims. The gateway has
checked the request (a flavor whose disk is not smaller, quotas) and wrote
InstanceResizeRequested with the flow id; the instance shows RESIZING while the flow runs.

1. `claim`: the scheduler holds the new flavor's resources itself, at once: on the instance's
   own host if it has room for the new flavor (its old claim not counted), else on the best
   other host by the placement filters: ResizeClaimed, or ResizeRefused. Undo:
   ResizeClaimReleased.
2. `stop`: InstanceResizeStopRequested to the agent of the instance's host: InstanceResizeStopped
   (`was_running` says whether it ran), or InstanceResizeFailed. Undo:
   InstanceResizeRestartRequested (the agent starts it again only if it ran).
3. `grow`: BootVolumeGrowRequested to the storage service: BootVolumeGrown, or
   BootVolumeGrowFailed. An instance without a boot volume (no image) has nothing to grow: the
   scheduler answers the step itself. No undo: a volume only grows, and the guest's
   filesystem never saw the new size (the next resize finds it grown already).
4. `switch_port`, only when the resize moves hosts and the instance has a network:
   MigrationPortSwitchRequested (the live migration's): the network moves the instance's port
   to the new host, whose network agent binds it and answers MigrationPortSwitched. In place,
   or without a port, the scheduler answers the step itself. Undo: the same request back to
   the old host (the old host's compute agent starts the guest again only once the port is
   bound there again). From here the new host's agents report on the instance
   (`resized_to`, the scheduler's `placed_on`) until the claim follows.
5. `redefine`, the pivot: InstanceRedefineRequested with the instance's placement on the
   chosen host with the new flavor, started again if it ran. In place, the agent redefines
   the stopped domain with the new vCPUs and memory. On another host, the new host's agent
   defines the guest from the placement (its existing boot volume and the port switched
   there) and starts it if it ran; the old host's stopped domain stays, untouched, until
   `release`. Answered by the agent of the new host: InstanceResized, or InstanceResizeFailed
   (nothing is left defined there, so the undo of the steps before ends the instance as it
   was, on its old host with its old flavor).
6. `release`: the scheduler moves the instance's claim to the resize's hold, with the new
   flavor: ResizeClaimMoved. From here the instance is the new flavor everywhere. After a
   move, the old host's agent reads it as its cue to forget the instance and undefine its
   stopped domain (the disks stay: they are the storage service's), at once and at each of
   its starts until it is gone, as after an evacuation: the guest runs exactly once.

A failure up to `redefine` ends the flow `FlowFailed` with the reason: the port goes back, the
hold is released, a guest that ran is started again with its old flavor on its old host, and
the reason is in its history. Billing follows the agents' reports (the old host's stop, the
new host's InstanceResized running): the guest is charged once, with no gap beyond the time
it was stopped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import structlog

from virga_events import Envelope
from virga_events.catalog.api import InstanceResizeRequested
from virga_events.catalog.compute import (
    InstanceResized,
    InstanceResizeFailed,
    InstanceResizeStopped,
)
from virga_events.catalog.network import MigrationPortSwitched
from virga_events.catalog.scheduler import (
    BootVolumeGrowRequested,
    InstanceRedefineRequested,
    InstanceResizeRestartRequested,
    InstanceResizeStopRequested,
    MigrationPortSwitchRequested,
    ResizeClaimed,
    ResizeClaimMoved,
    ResizeClaimReleased,
    ResizeRefused,
)
from virga_events.catalog.storage import BootVolumeGrowFailed, BootVolumeGrown
from virga_runtime.flow_manager import FlowManager
from virga_runtime.flows import Flow, FlowDefinition, Step
from virga_runtime.service import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.migration import Scheduling
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.core.placement import Placement, Policy, select_host
from virga_scheduler.core.placement.scheduler import first_rejection

log = structlog.get_logger(__name__)

RESIZE = "resize"
"""The flow's name in its events (`FlowStarted.definition`); its subject is the instance."""

AGENT_SECONDS = timedelta(seconds=120)
"""How long an agent may take to stop a guest (its grace period and more) or to define it."""
GROW_SECONDS = timedelta(seconds=120)
SWITCH_SECONDS = timedelta(seconds=60)

RAN = "yes"
"""`flow["was_running"]` of a guest that ran when the resize stopped it (else empty)."""


def resize_claim_id(instance_id: str, flow_id: str) -> str:
    """The claims ledger's key for the new flavor's resources a resize holds, next to the
    instance's own claim until `release` moves it."""
    return f"{instance_id}@resize:{flow_id}"


# -- the steps, in order ----------------------------------------------------------------------


def _claim(ctx: Scheduling, flow: Flow) -> list[Emit]:
    """Hold the new flavor on the instance's host if it has room, else on the best other
    host. Answered at once, by the scheduler itself."""
    state, instance_id, source = ctx.state, flow.subject, flow["source"]

    def refused(reason: str) -> list[Emit]:
        log.info("resize_refused", instance_id=instance_id, reason=reason)
        answer = ResizeRefused(flow_id=flow.flow_id, step="claim", reason=reason)
        return [Emit(answer, instance_id, flow.tenant_id)]

    record, held = state.instances.get(instance_id), state.claims.get(instance_id)
    if record is None or record.requested is None or record.deletion_requested:
        return refused(f"instance {instance_id} is unknown or being deleted")
    if held is None or held.host != source:
        return refused(f"instance {instance_id} is not placed on host {source}")
    flavor = record.requested.flavor
    new = replace(
        flavor,
        name=flow["flavor"],
        vcpus=int(flow["vcpus"]),
        ram_mb=int(flow["ram_mb"]),
        disk_gb=int(flow["disk_gb"]),
    )
    if new.disk_gb < flavor.disk_gb:
        return refused(f"flavor {new.name}'s disk is smaller than the instance's")
    request = replace(
        record.placement_request(), vcpus=new.vcpus, ram_mb=new.ram_mb, disk_gb=new.disk_gb
    )
    view = state.view()
    # In place, the old claim is given up at the end: the new flavor needs room beside nothing.
    mine = view.release(instance_id)
    if source in mine.hosts and first_rejection(mine.hosts[source], request, mine) is None:
        name = source
    else:
        others = replace(request, excluded_hosts=request.excluded_hosts | {source})
        result = select_host(others, view, Policy(weigher=ctx.config.weigher))
        if not isinstance(result, Placement):
            return refused(f"no room on host {source}; {result.reason}")
        name = result.host
    host = view.hosts[name]
    log.info("resize_claimed", instance_id=instance_id, host=name, flavor=new.name)
    claimed = ResizeClaimed(
        flow_id=flow.flow_id, step="claim", host=name, rack=host.rack, zone=host.zone, flavor=new
    )
    return [Emit(claimed, instance_id, flow.tenant_id)]


def _release_claim(ctx: Scheduling, flow: Flow) -> list[Emit]:
    released = ResizeClaimReleased(
        flow_id=flow.flow_id, host=flow["destination"], reason=f"resize failed: {flow.reason}"
    )
    return [Emit(released, flow.subject, flow.tenant_id)]


def _stop(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = InstanceResizeStopRequested(flow_id=flow.flow_id, step="stop", host=flow["source"])
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _restart(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = InstanceResizeRestartRequested(flow_id=flow.flow_id, host=flow["source"])
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _grow(ctx: Scheduling, flow: Flow) -> list[Emit]:
    size_gb = int(flow["disk_gb"])
    record = ctx.state.instances.get(flow.subject)
    if record is not None and record.requested is not None and record.requested.image is None:
        # No boot volume (it boots from no image): nothing to grow, so no one else to ask.
        grown = BootVolumeGrown(flow_id=flow.flow_id, step="grow", size_gb=size_gb)
        return [Emit(grown, flow.subject, flow.tenant_id)]
    asked = BootVolumeGrowRequested(flow_id=flow.flow_id, step="grow", size_gb=size_gb)
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _moves_a_port(ctx: Scheduling, flow: Flow) -> bool:
    """Whether the resize moves hosts with a port to take along."""
    if flow["destination"] == flow["source"]:
        return False
    record = ctx.state.instances.get(flow.subject)
    return record is None or record.requested is None or record.requested.network is not None


def _switch_port(ctx: Scheduling, flow: Flow) -> list[Emit]:
    destination = flow["destination"]
    if not _moves_a_port(ctx, flow):
        # In place, or no port: nothing to move, so no one else to ask.
        switched = MigrationPortSwitched(flow_id=flow.flow_id, step="switch_port", host=destination)
        return [Emit(switched, flow.subject, flow.tenant_id)]
    asked = MigrationPortSwitchRequested(
        flow_id=flow.flow_id, step="switch_port", host=destination, source=flow["source"]
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _switch_back(ctx: Scheduling, flow: Flow) -> list[Emit]:
    if not _moves_a_port(ctx, flow):
        return []
    back = MigrationPortSwitchRequested(
        flow_id=flow.flow_id, step="switch_back", host=flow["source"], source=flow["destination"]
    )
    return [Emit(back, flow.subject, flow.tenant_id)]


def _redefine(ctx: Scheduling, flow: Flow) -> list[Emit]:
    """Ask for the guest on the chosen host with the new flavor: the placement the agent
    (re)defines it from, as a placement carries everything an agent builds a guest from."""
    state, destination = ctx.state, flow["destination"]
    record, host = state.instances.get(flow.subject), state.hosts.get(destination)
    if record is None or record.requested is None or host is None:
        failed = InstanceResizeFailed(
            flow_id=flow.flow_id,
            step="redefine",
            host=destination,
            reason=f"instance {flow.subject} or host {destination} is gone",
        )
        return [Emit(failed, flow.subject, flow.tenant_id)]
    placement = record.placed_on(host, record.attempts)
    flavor = replace(
        placement.flavor,
        name=flow["flavor"],
        vcpus=int(flow["vcpus"]),
        ram_mb=int(flow["ram_mb"]),
        disk_gb=int(flow["disk_gb"]),
    )
    asked = InstanceRedefineRequested(
        flow_id=flow.flow_id,
        step="redefine",
        source=flow["source"],
        placement=replace(placement, flavor=flavor),
        start=flow.get("was_running") == RAN,
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _release(ctx: Scheduling, flow: Flow) -> list[Emit]:
    record = ctx.state.instances.get(flow.subject)
    old = record.requested.flavor if record is not None and record.requested else None
    if old is None:
        return []  # deleted meanwhile: its claims went with it, the step times out and retries
    moved = ResizeClaimMoved(
        flow_id=flow.flow_id,
        step="release",
        source=flow["source"],
        destination=flow["destination"],
        flavor=replace(
            old,
            name=flow["flavor"],
            vcpus=int(flow["vcpus"]),
            ram_mb=int(flow["ram_mb"]),
            disk_gb=int(flow["disk_gb"]),
        ),
    )
    return [Emit(moved, flow.subject, flow.tenant_id)]


def _from_source(flow: Flow, event: InstanceResizeStopped | InstanceResizeFailed) -> bool:
    return event.host == flow["source"]


def _from_destination(
    flow: Flow, event: MigrationPortSwitched | InstanceResized | InstanceResizeFailed
) -> bool:
    return event.host == flow["destination"]


FLOW: FlowDefinition[Scheduling] = FlowDefinition(
    RESIZE,
    (
        Step(
            "claim",
            _claim,
            completed_by=(ResizeClaimed,),
            failed_by=(ResizeRefused,),
            compensate=_release_claim,
            result=lambda claimed: {"destination": claimed.host},
        ),
        Step(
            "stop",
            _stop,
            completed_by=(InstanceResizeStopped,),
            failed_by=(InstanceResizeFailed,),
            timeout=AGENT_SECONDS,
            compensate=_restart,
            result=lambda stopped: {"was_running": RAN if stopped.was_running else ""},
            accepts=_from_source,
        ),
        Step(
            "grow",
            _grow,
            completed_by=(BootVolumeGrown,),
            failed_by=(BootVolumeGrowFailed,),
            timeout=GROW_SECONDS,
        ),
        Step(
            "switch_port",
            _switch_port,
            completed_by=(MigrationPortSwitched,),
            timeout=SWITCH_SECONDS,
            attempts=3,
            compensate=_switch_back,
            accepts=_from_destination,
        ),
        Step(
            "redefine",
            _redefine,
            completed_by=(InstanceResized,),
            failed_by=(InstanceResizeFailed,),
            timeout=AGENT_SECONDS,
            accepts=_from_destination,
        ),
        Step("release", _release, completed_by=(ResizeClaimMoved,), attempts=5),
    ),
    pivot="redefine",
)

FLOWS = FlowManager(FLOW)


# -- how the scheduler uses it ----------------------------------------------------------------


def requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[InstanceResizeRequested]
) -> list[Emit]:
    """Start a resize of the instance, unless another flow moves or resizes it."""
    instance_id, flavor = envelope.aggregate_id, envelope.payload.flavor
    if any(flow.subject == instance_id for flow in state.flows.running()):
        log.info("resize_while_flow_runs", instance_id=instance_id)
        return []
    held = state.claims.get(instance_id)
    return FLOWS.start(
        Scheduling(config, state),
        state.flows,
        RESIZE,
        envelope.payload.flow_id or envelope.event_id,
        subject=instance_id,
        tenant_id=envelope.tenant_id,
        inputs={
            "source": held.host if held is not None else "",
            "flavor": flavor.name,
            "vcpus": str(flavor.vcpus),
            "ram_mb": str(flavor.ram_mb),
            "disk_gb": str(flavor.disk_gb),
        },
        now=envelope.occurred_at,
    )


def answered(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> list[Emit]:
    """What a running resize does about an answer (nothing for other events)."""
    return FLOWS.decide(Scheduling(config, state), state.flows, envelope)


def deadlines(config: SchedulerConfig, state: SchedulerState, now: datetime) -> list[Emit]:
    return FLOWS.tick(Scheduling(config, state), state.flows, now)


def resized_to(state: SchedulerState, instance_id: str) -> str | None:
    """The new host of a resize that moves the instance, once its port is sent there (from
    `switch_port` on): that host's agents report on it before the claim moves there."""
    for flow in state.flows.running():
        if flow.subject == instance_id and flow.definition == RESIZE and "grow" in flow.done:
            return flow.get("destination")
    return None
