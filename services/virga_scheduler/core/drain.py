"""Draining a host: every instance it runs live-migrated away, a bounded number at a time.

Hosted by the scheduler as a flow (`virga_runtime.flows`) of one step, `move_off`. The drain
lists, when it starts, the instances running on the host (`instances`) and those placed there
but stopped (`stopped`: left where they are, running nothing). Its command starts the first
migrations, each a `live-migration` flow of `migration.py` whose id is `child_id(drain,
instance)` and whose `drain` input names the drain; each time one of them ends, the drain
starts the next (at most `SchedulerConfig.drain_parallel` at once) until every listed
instance had its one try. The scheduler answers the step itself: `HostDrained` when none of
them runs on the host any more, else `HostDrainFailed` naming those that could not move (no
valid host, the migration failed): they run on where they were.

The drain keeps no state of its own: its progress is read from the flow book (its children),
so a rebuild brings it back where it was, and the scheduler's tick pumps every running drain.

A rebalance (`rebalance.py`) is the same machinery with a plan: the flow `rebalance` of one
step, `move`, lists its instances with each one's planned `sources` and `destinations`; each
migration asks for its planned destination (the migration's `claim` step re-checks it against
every filter, so a move the cluster no longer allows fails there and the instance runs on),
and an instance no longer on its planned source is skipped. It ends with `RebalanceFinished`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import structlog

from virga_events import Envelope
from virga_events.catalog.api import HostDrainRequested
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.scheduler import (
    HostDrained,
    HostDrainFailed,
    MigrationDestinationClaimed,
    MigrationDestinationReleased,
    RebalanceFinished,
)
from virga_runtime.flow_manager import FlowManager
from virga_runtime.flows import FLOW_EVENTS, Flow, FlowBook, FlowDefinition, Step, apply
from virga_runtime.service import Emit
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import migration
from virga_scheduler.core.model import SchedulerState
from virga_scheduler.core.placement import Claim, PlacementView

log = structlog.get_logger(__name__)

HOST_DRAIN = "host-drain"
"""The flow's name in its events (`FlowStarted.definition`); its subject is the host."""

REBALANCE = "rebalance"
"""The rebalance flow's name in its events; its subject is ``rebalance`` (one runs at a time)."""

BATCHES = (HOST_DRAIN, REBALANCE)
"""The flows that run a batch of migrations with this module's pump."""

EVACUATE_SECONDS = timedelta(days=7)
"""A drain moves one instance after another: its step has no deadline worth the name."""


@dataclass(frozen=True, slots=True)
class Draining:
    """What the drain's command reads: the scheduler's settings and state, and the time."""

    config: SchedulerConfig
    state: SchedulerState
    now: datetime


@dataclass(frozen=True, slots=True)
class Progress:
    """Where each instance a drain listed stands."""

    moved: tuple[str, ...] = ()
    unmoved: tuple[str, ...] = ()
    """Their migration failed (or found no host): they run on at the host."""
    in_flight: tuple[str, ...] = ()
    waiting: tuple[str, ...] = ()
    gone: tuple[str, ...] = ()
    """Left the host another way (deleted, moved by another flow) before their turn."""
    stopped: tuple[str, ...] = ()
    """Stopped before their turn: left placed on the host, as those stopped at the start."""

    @property
    def finished(self) -> bool:
        return not self.in_flight and not self.waiting


def child_id(drain_id: str, instance_id: str) -> str:
    """The id of the migration flow a drain runs for one instance (so a repeat starts none)."""
    return f"{drain_id}/{instance_id}"


def listed(drain: Flow, key: str = "instances") -> tuple[str, ...]:
    return tuple(name for name in drain.inputs.get(key, "").split(",") if name)


def routes(flow: Flow) -> dict[str, tuple[str, str]]:
    """Instance -> (the host it leaves, the host asked for: "" for the best) of a batch: a
    drain's host and any host, or a rebalance's planned move."""
    instances = listed(flow)
    if flow.definition != REBALANCE:
        return {instance_id: (flow.subject, "") for instance_id in instances}
    planned = zip(listed(flow, "sources"), listed(flow, "destinations"), strict=True)
    return dict(zip(instances, planned, strict=True))


def progress(state: SchedulerState, book: FlowBook, drain: Flow) -> Progress:
    """Where the drain's instances stand, as `book` (the scheduler's, or a scratch copy
    with the decision's own events) tells it."""
    found: dict[str, list[str]] = {key: [] for key in Progress.__dataclass_fields__}
    for instance_id, (source, _) in routes(drain).items():
        child = book.flows.get(child_id(drain.flow_id, instance_id))
        if child is None:
            held, record = state.claims.get(instance_id), state.instances.get(instance_id)
            if held is None or held.host != source:
                found["gone"].append(instance_id)
            elif record is None or record.deletion_requested:
                found["gone"].append(instance_id)  # its agent deletes it there
            else:
                found["stopped" if instance_id in state.stopped else "waiting"].append(instance_id)
        elif child.outcome == "running":
            found["in_flight"].append(instance_id)
        else:
            found["moved" if child.outcome == "completed" else "unmoved"].append(instance_id)
    return Progress(**{key: tuple(names) for key, names in found.items()})


def pump(ctx: Draining, book: FlowBook, drain: Flow, view: PlacementView) -> list[Emit]:
    """Start migrations while fewer than the limit run, or answer the drain's step once every
    instance had its try. `view` holds the claims as this decision leaves them."""
    scratch = FlowBook(flows=dict(book.flows))
    busy = {flow.subject for flow in book.running()}
    now, emits = ctx.now, []
    before = progress(ctx.state, scratch, drain)
    running = len(before.in_flight)
    planned = routes(drain)
    for instance_id in before.waiting:
        if running >= ctx.config.drain_parallel:
            break
        if instance_id in busy:
            continue  # another migration of it runs: its turn comes when that one ended
        child = child_id(drain.flow_id, instance_id)
        record = ctx.state.instances.get(instance_id)
        started = migration.FLOWS.start(
            migration.Scheduling(ctx.config, replace(ctx.state, view_cache=view)),
            scratch,
            migration.LIVE_MIGRATION,
            child,
            subject=instance_id,
            tenant_id=record.tenant_id if record is not None else None,
            inputs=_child_inputs(drain, *planned[instance_id]),
            now=now,
        )
        log.info("batch_migration_started", flow=drain.definition, instance_id=instance_id)
        view = _held(view, started)
        for emit in started:
            if isinstance(emit.payload, FLOW_EVENTS):
                apply(scratch, emit.aggregate_id, emit.tenant_id, emit.payload)
        emits.extend(started)
        started_flow = scratch.flows.get(child)
        if started_flow is not None and started_flow.outcome == "running":
            running += 1
    return [*emits, *_answer(drain, progress(ctx.state, scratch, drain))]


def _child_inputs(batch: Flow, source: str, asked: str) -> dict[str, str]:
    inputs = {"source": source, "asked": asked, "drain": batch.flow_id}
    if batch.definition == REBALANCE:
        inputs["by"] = REBALANCE  # so readers of `drain` (the gateway) know it drains no host
    return inputs


def _answer(drain: Flow, now: Progress) -> list[Emit]:
    """The drain's end once no instance of it waits or moves (nothing before)."""
    if not now.finished:
        return []
    if drain.definition == REBALANCE:
        skipped = (*now.gone, *now.stopped)
        log.info("rebalanced", moved=now.moved, unmoved=now.unmoved, skipped=skipped)
        done = RebalanceFinished(
            flow_id=drain.flow_id,
            step="move",
            moved=now.moved,
            unmoved=now.unmoved,
            skipped=skipped,
        )
        return [Emit(done, drain.subject, None)]
    stopped = (*listed(drain, "stopped"), *now.stopped)
    end: HostDrained | HostDrainFailed
    if now.unmoved:
        reason = f"{len(now.unmoved)} instance(s) could not move: {', '.join(now.unmoved)}"
        log.warning("host_drain_failed", host=drain.subject, unmoved=now.unmoved)
        end = HostDrainFailed(
            flow_id=drain.flow_id,
            step="move_off",
            reason=reason,
            unmoved=now.unmoved,
            moved=now.moved,
            stopped=stopped,
        )
    else:
        log.info("host_drained", host=drain.subject, moved=now.moved)
        end = HostDrained(flow_id=drain.flow_id, step="move_off", moved=now.moved, stopped=stopped)
    return [Emit(end, drain.subject, None)]


def _held(view: PlacementView, emits: Iterable[Emit]) -> PlacementView:
    """`view` with the destination claims `emits` take or give back."""
    for emit in emits:
        event = emit.payload
        if isinstance(event, MigrationDestinationClaimed):
            key = migration.destination_claim_id(emit.aggregate_id, event.flow_id)
            flavor = event.flavor
            view = view.add_claim(
                Claim(key, event.host, flavor.vcpus, flavor.ram_mb, flavor.disk_gb)
            )
        elif isinstance(event, MigrationDestinationReleased):
            key = migration.destination_claim_id(emit.aggregate_id, event.flow_id)
            if view.claims.get(key) is not None:
                view = view.release(key)
    return view


def _move_off(ctx: Draining, flow: Flow) -> list[Emit]:
    return pump(ctx, ctx.state.flows, flow, ctx.state.view())


FLOW: FlowDefinition[Draining] = FlowDefinition(
    HOST_DRAIN,
    (
        Step(
            "move_off",
            _move_off,
            completed_by=(HostDrained,),
            failed_by=(HostDrainFailed,),
            timeout=EVACUATE_SECONDS,
        ),
    ),
)

REBALANCE_FLOW: FlowDefinition[Draining] = FlowDefinition(
    REBALANCE,
    (Step("move", _move_off, completed_by=(RebalanceFinished,), timeout=EVACUATE_SECONDS),),
)

DRAINS = FlowManager(FLOW, REBALANCE_FLOW)


# -- how the scheduler uses it ----------------------------------------------------------------


def requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[HostDrainRequested]
) -> list[Emit]:
    """Start draining the host (unless a drain of it runs): its running instances are listed
    now; the gateway disabled the host just before, so none is placed there meanwhile."""
    host = envelope.aggregate_id
    if any(f.definition == HOST_DRAIN and f.subject == host for f in state.flows.running()):
        log.info("drain_already_running", host=host)
        return []
    running: list[str] = []
    stopped: list[str] = []
    for claim in state.claims.all():
        record = state.instances.get(claim.instance_id)
        if claim.host != host or record is None or record.deletion_requested:
            continue  # a migration's hold on its destination, or an instance going away
        (stopped if claim.instance_id in state.stopped else running).append(claim.instance_id)
    log.info("drain_started", host=host, instances=len(running), stopped=len(stopped))
    return DRAINS.start(
        Draining(config, state, envelope.occurred_at),
        state.flows,
        HOST_DRAIN,
        envelope.payload.flow_id,
        subject=host,
        tenant_id=None,
        inputs={"instances": ",".join(sorted(running)), "stopped": ",".join(sorted(stopped))},
        now=envelope.occurred_at,
    )


def follow(
    config: SchedulerConfig,
    state: SchedulerState,
    decided: list[Emit],
    now: datetime,
    *,
    every: bool = False,
) -> list[Emit]:
    """What running drains do once `decided` (this decision's events) is folded: those whose
    migrations it ends (every running drain if `every`: the tick) start the next, or end."""
    book = state.flows
    ended = {
        emit.aggregate_id
        for emit in decided
        if isinstance(emit.payload, (FlowCompleted, FlowFailed))
        and emit.aggregate_id in book.flows
        and book.flows[emit.aggregate_id].inputs.get("drain")
    }
    drains = {book.flows[flow_id].inputs["drain"] for flow_id in ended}
    if every:
        drains |= {f.flow_id for f in book.running() if f.definition in BATCHES}
    if not drains:
        return []
    scratch = FlowBook(flows={**book.flows, **{i: book.flows[i].clone() for i in ended}})
    for emit in decided:
        if emit.aggregate_id in ended and isinstance(emit.payload, FLOW_EVENTS):
            apply(scratch, emit.aggregate_id, emit.tenant_id, emit.payload)
    view, emits = _held(state.view(), decided), []
    ctx = Draining(config, state, now)
    for drain_id in sorted(drains):
        drain = book.flows.get(drain_id)
        if drain is None or drain.outcome != "running":
            continue
        pumped = pump(ctx, scratch, drain, view)
        view = _held(view, pumped)
        for emit in pumped:
            if isinstance(emit.payload, FLOW_EVENTS):
                apply(scratch, emit.aggregate_id, emit.tenant_id, emit.payload)
            emits.append(emit)
            if isinstance(emit.payload, (HostDrained, HostDrainFailed, RebalanceFinished)):
                emits.extend(DRAINS.answer(ctx, book, emit.payload, now))
    return emits


def deadlines(config: SchedulerConfig, state: SchedulerState, now: datetime) -> list[Emit]:
    return DRAINS.tick(Draining(config, state, now), state.flows, now)
