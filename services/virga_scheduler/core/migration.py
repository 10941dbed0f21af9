"""Live migration of one running instance, as the scheduler runs it: the whole runbook.

The scheduler hosts the flow because it owns what must never leak: claims. Agents only carry
out steps and report; the flow (`virga_runtime.flows`) says which step each migration is in.

1. `claim`: the scheduler holds the instance's resources on the destination itself, at once:
   MigrationDestinationClaimed, or MigrationDestinationRefused. Undo: MigrationDestinationReleased.
2. `plumb`: MigrationPortPlumbRequested to the destination's network agent: MigrationPortPlumbed,
   or MigrationPortPlumbingFailed. Undo: MigrationPortUnplumbRequested.
3. `migrate`, the pivot: InstanceMigrationRequested to the source's compute agent:
   InstanceMigrated, or InstanceMigrationFailed. No undo: the guest runs on at the source.
4. `switch_port`: MigrationPortSwitchRequested to the network agents: MigrationPortSwitched
   (retried, never undone).
5. `release_source`: the scheduler moves the instance's claim to the destination itself:
   MigrationClaimMoved.

A failure up to `migrate` ends the flow `FlowFailed` with the reason: the destination claim is
released and the destination's plumbing removed, and the instance runs on at the source
(libvirt resumes a guest whose migration failed or was aborted). Once the guest has moved, the
flow only goes forward. Each answer must come from the host that was asked (`Step.accepts`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from virga_events import Envelope
from virga_events.catalog.api import LiveMigrationRequested
from virga_events.catalog.compute import InstanceMigrated, InstanceMigrationFailed
from virga_events.catalog.network import (
    MigrationPortPlumbed,
    MigrationPortPlumbingFailed,
    MigrationPortSwitched,
)
from virga_events.catalog.scheduler import (
    InstanceMigrationRequested,
    MigrationClaimMoved,
    MigrationDestinationClaimed,
    MigrationDestinationRefused,
    MigrationDestinationReleased,
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
    MigrationPortUnplumbRequested,
)
from virga_runtime.flow_manager import FlowManager
from virga_runtime.flows import Flow, FlowDefinition, Step
from virga_runtime.service import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.core.placement import Placement, Policy, select_host
from virga_scheduler.core.placement.scheduler import first_rejection

log = structlog.get_logger(__name__)

LIVE_MIGRATION = "live-migration"
"""The flow's name in its events (`FlowStarted.definition`)."""

AGENT_SECONDS = timedelta(seconds=60)
"""How long an agent may take to plumb or switch a port before the step fails (or retries)."""
MIGRATE_SECONDS = timedelta(seconds=360)
"""Longer than the compute agent's own migration timeout (`MigrationOptions.timeout`, 300 s),
which aborts a migration that does not converge and reports the failure: so the flow hears
the outcome from the agent, never gives up on a guest that may still be moving."""


@dataclass(frozen=True, slots=True)
class Scheduling:
    """What the migration's own commands read: the scheduler's settings and state."""

    config: SchedulerConfig
    state: SchedulerState


def destination_claim_id(instance_id: str, flow_id: str) -> str:
    """The claims ledger's key for the resources a migration holds on its destination, next
    to the instance's own claim on the source until `release_source` moves it."""
    return f"{instance_id}@migration:{flow_id}"


# -- the steps, in order ----------------------------------------------------------------------


def _claim(ctx: Scheduling, flow: Flow) -> list[Emit]:
    return claim_destination(ctx, flow, live=True)


def claim_destination(ctx: Scheduling, flow: Flow, *, live: bool) -> list[Emit]:
    """Hold the instance's resources on the destination: the asked host if it passes every
    filter, else the best host but the source. Answered at once, by the scheduler itself.
    `live`: only hosts that receive live migrations (an evacuation's rebuild needs none)."""
    state, instance_id, source = ctx.state, flow.subject, flow["source"]

    def refused(reason: str) -> list[Emit]:
        log.info("migration_refused", instance_id=instance_id, reason=reason)
        answer = MigrationDestinationRefused(flow_id=flow.flow_id, step="claim", reason=reason)
        return [Emit(answer, instance_id, flow.tenant_id)]

    record, held = state.instances.get(instance_id), state.claims.get(instance_id)
    if record is None or record.requested is None or record.deletion_requested:
        return refused(f"instance {instance_id} is unknown or being deleted")
    if held is None or not source:
        return refused(f"instance {instance_id} is placed on no host")
    if held.host != source:
        return refused(f"instance {instance_id} moved from host {source} to {held.host}")
    view, asked = state.view(), flow.get("asked")
    # A host whose agent announced no migration endpoint cannot receive the guest.
    deaf = {name for name in view.hosts if live and name not in state.migration_targets}
    request = replace(
        record.placement_request(),
        excluded_hosts=frozenset({*record.failed_hosts, source, *deaf}),
    )
    if asked:
        if asked == source:
            return refused(f"instance {instance_id} already runs on host {asked}")
        if asked not in view.hosts:
            return refused(f"host {asked} is unknown")
        if asked in deaf:
            return refused(f"host {asked} cannot receive live migrations")
        rejection = first_rejection(view.hosts[asked], request, view)
        if rejection is not None:
            return refused(f"host {asked}: {rejection.reason}")
        name = asked
    else:
        result = select_host(request, view, Policy(weigher=ctx.config.weigher))
        if not isinstance(result, Placement):
            return refused(result.reason)
        name = result.host
    host = view.hosts[name]
    claimed = MigrationDestinationClaimed(
        flow_id=flow.flow_id,
        step="claim",
        host=host.name,
        rack=host.rack,
        zone=host.zone,
        flavor=record.requested.flavor,
    )
    return [Emit(claimed, instance_id, flow.tenant_id)]


def _what(flow: Flow) -> str:
    return "migration" if flow.definition == LIVE_MIGRATION else flow.definition


def release_destination(ctx: Scheduling, flow: Flow) -> list[Emit]:
    released = MigrationDestinationReleased(
        flow_id=flow.flow_id,
        host=flow["destination"],
        reason=f"{_what(flow)} failed: {flow.reason}",
    )
    return [Emit(released, flow.subject, flow.tenant_id)]


def _plumb(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = MigrationPortPlumbRequested(
        flow_id=flow.flow_id, step="plumb", host=flow["destination"]
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _unplumb(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = MigrationPortUnplumbRequested(flow_id=flow.flow_id, host=flow["destination"])
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _migrate(ctx: Scheduling, flow: Flow) -> list[Emit]:
    """Ask the source's agent, with what it needs to reach the destination and what the
    destination's agent adopts the instance from (its placement there)."""
    state, destination = ctx.state, flow["destination"]
    target = state.migration_targets.get(destination)
    record, host = state.instances.get(flow.subject), state.hosts.get(destination)
    placement = None
    if record is not None and record.requested is not None and host is not None:
        placement = record.placed_on(host, record.attempts)
    asked = InstanceMigrationRequested(
        flow_id=flow.flow_id,
        step="migrate",
        source=flow["source"],
        destination=destination,
        destination_uri=target.uri if target else None,
        migration_address=target.address if target else None,
        destination_ceph_user=target.ceph_user if target else None,
        destination_ceph_secret_uuid=target.ceph_secret_uuid if target else None,
        placement=placement,
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def _switch_port(ctx: Scheduling, flow: Flow) -> list[Emit]:
    asked = MigrationPortSwitchRequested(
        flow_id=flow.flow_id, step="switch_port", host=flow["destination"], source=flow["source"]
    )
    return [Emit(asked, flow.subject, flow.tenant_id)]


def release_source(ctx: Scheduling, flow: Flow) -> list[Emit]:
    moved = MigrationClaimMoved(
        flow_id=flow.flow_id,
        step="release_source",
        source=flow["source"],
        destination=flow["destination"],
    )
    return [Emit(moved, flow.subject, flow.tenant_id)]


def _from_destination(flow: Flow, event: MigrationPortPlumbed | MigrationPortSwitched) -> bool:
    return event.host == flow["destination"]


def _from_source(flow: Flow, event: InstanceMigrated | InstanceMigrationFailed) -> bool:
    moved_to = getattr(event, "destination", flow["destination"])
    return event.host == flow["source"] and moved_to == flow["destination"]


FLOW: FlowDefinition[Scheduling] = FlowDefinition(
    LIVE_MIGRATION,
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
            "plumb",
            _plumb,
            completed_by=(MigrationPortPlumbed,),
            failed_by=(MigrationPortPlumbingFailed,),
            timeout=AGENT_SECONDS,
            compensate=_unplumb,
            accepts=_from_destination,
        ),
        Step(
            "migrate",
            _migrate,
            completed_by=(InstanceMigrated,),
            failed_by=(InstanceMigrationFailed,),
            timeout=MIGRATE_SECONDS,
            accepts=_from_source,
        ),
        Step(
            "switch_port",
            _switch_port,
            completed_by=(MigrationPortSwitched,),
            timeout=AGENT_SECONDS,
            attempts=5,
            accepts=_from_destination,
        ),
        Step("release_source", release_source, completed_by=(MigrationClaimMoved,), attempts=5),
    ),
    pivot="migrate",
)

FLOWS = FlowManager(FLOW)
"""Every flow the scheduler hosts."""


# -- how the scheduler uses it ----------------------------------------------------------------


def requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[LiveMigrationRequested]
) -> list[Emit]:
    """Start a migration of the instance (flow id: the request's, else its event id), unless
    one runs."""
    instance_id = envelope.aggregate_id
    held = state.claims.get(instance_id)
    if any(flow.subject == instance_id for flow in state.flows.running()):
        log.info("migration_already_running", instance_id=instance_id)
        return []
    return FLOWS.start(
        Scheduling(config, state),
        state.flows,
        LIVE_MIGRATION,
        envelope.payload.flow_id or envelope.event_id,
        subject=instance_id,
        tenant_id=envelope.tenant_id,
        inputs={
            "source": held.host if held is not None else "",
            "asked": envelope.payload.host or "",
        },
        now=envelope.occurred_at,
    )


def answered(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> list[Emit]:
    """What a running migration does about an agent's answer (nothing for other events)."""
    return FLOWS.decide(Scheduling(config, state), state.flows, envelope)


def deadlines(config: SchedulerConfig, state: SchedulerState, now: datetime) -> list[Emit]:
    """Steps whose deadline passed fail (the flow retries or undoes what was done)."""
    return FLOWS.tick(Scheduling(config, state), state.flows, now)


def moved_to(state: SchedulerState, instance_id: str) -> str | None:
    """The destination of the instance's migration once its `migrate` step completed: the
    guest runs there, and that host's agents report on it (its port bound there at
    `switch_port`), while the claim moves from the source only at `release_source`."""
    for flow in state.flows.running():
        if flow.subject == instance_id and "migrate" in flow.done:
            return flow.get("destination")
    return None
