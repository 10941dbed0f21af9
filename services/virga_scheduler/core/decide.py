"""The scheduler's decisions: pure functions of its state and one event, or of the time.

``decide`` runs after ``evolve`` has folded the event, and the runtime folds the events it
returns before the next decision, so each decision sees every claim made before it. Where one
event places several instances (a server group arriving for held requests) they are decided in
turn against a local view that already holds the previous ones' claims.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from virga_events import Envelope
from virga_events.catalog.api import (
    EvacuationRequested,
    HostDrainRequested,
    InstanceDeletionRequested,
    InstanceRequested,
    InstanceResizeRequested,
    LiveMigrationRequested,
    RebalanceRequested,
    ServerGroupCreated,
)
from virga_events.catalog.compute import (
    FINAL_PHASES,
    HostHeartbeat,
    HostRegistered,
    InstanceDeleted,
    InstanceFailed,
)
from virga_events.catalog.scheduler import (
    ClaimReleased,
    HostMarkedDown,
    HostMarkedUp,
    InstanceSchedulingFailed,
)
from virga_runtime.service import Emit, Intent
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import drain, evacuation, migration, rebalance, resize
from virga_scheduler.core.model import InstanceRecord, SchedulerState
from virga_scheduler.core.placement import Placement, PlacementView, Policy, select_host

log = structlog.get_logger(__name__)


def decide(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> Sequence[Intent]:
    """What to do about one new input event; ``state`` already includes it. An answer to a
    step of a flow the scheduler runs (a live migration, a resize) goes to that flow."""
    decider = _DECIDERS.get(type(envelope.payload))
    decided = () if decider is None else decider(config, state, envelope)
    flows = [
        *migration.answered(config, state, envelope),
        *evacuation.answered(config, state, envelope),
        *resize.answered(config, state, envelope),
    ]
    if not flows:
        return decided
    drains = drain.follow(config, state, [*decided, *flows], envelope.occurred_at)
    return [*decided, *flows, *drains]


def tick(config: SchedulerConfig, state: SchedulerState, now: datetime) -> Sequence[Intent]:
    """What time alone makes happen: hosts gone silent go down; requests held too long for a
    server group that never came fail; flow steps past their deadline fail; running drains
    start their next migrations (after a restart, or once another flow let an instance go)."""
    intents: list[Emit] = migration.deadlines(config, state, now)
    intents.extend(evacuation.deadlines(config, state, now))
    intents.extend(resize.deadlines(config, state, now))
    intents.extend(drain.follow(config, state, intents, now, every=True))
    intents.extend(drain.deadlines(config, state, now))
    silent_since = now - timedelta(seconds=config.heartbeat_timeout_seconds)
    for name in sorted(state.hosts):
        last = state.last_seen.get(name)
        if name not in state.down and (last is None or last < silent_since):
            log.info("host_down", host=name, last_heartbeat_at=None if last is None else str(last))
            intents.append(Emit(HostMarkedDown(last_heartbeat_at=last), name, None))
            intents.extend(evacuation.host_down(config, state, name, now))
    held_since = now - timedelta(seconds=config.server_group_wait_seconds)
    for record in state.waiting_for():
        if record.requested_at is None or record.requested_at < held_since:
            group = record.requested.server_group if record.requested else None
            reason = (
                f"server group {group} does not exist"
                f" (waited {config.server_group_wait_seconds:g} s for it)"
            )
            intents.append(_refused(record, reason, record.attempts + 1))
    return intents


# -- one event each ---------------------------------------------------------------------------


def _requested(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> list[Emit]:
    record = state.instances.get(envelope.aggregate_id)
    if record is None or record.requested is None or record.status != "pending":
        return []  # deleted already, or a repeated request decided before
    group = record.requested.server_group
    if group is not None and group not in state.groups:
        # Its ServerGroupCreated is on another partition and may come later: placing without
        # the policy would break what the user asked for, so it waits (see `tick` for how long).
        log.info("held_for_server_group", instance_id=record.instance_id, server_group=group)
        return []
    emit, _ = _place(config, state.view(), record)
    return [emit]


def _group_created(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope
) -> list[Emit]:
    held = state.waiting_for(envelope.aggregate_id)
    view, intents = state.view(), []
    for n, record in enumerate(held):
        emit, view = _place(config, view, record, claim=n < len(held) - 1)
        intents.append(emit)
    return intents


def _deletion_requested(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope
) -> list[Emit]:
    instance_id = envelope.aggregate_id
    if instance_id not in state.instances or instance_id in state.claims:
        return []  # unknown or deleted already; or placed, and its compute agent deletes it
    log.info("deleted_unplaced", instance_id=instance_id)
    return [Emit(InstanceDeleted(host=None), instance_id, envelope.tenant_id)]


def _instance_failed(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope[InstanceFailed]
) -> list[Emit]:
    event = envelope.payload
    instance_id = envelope.aggregate_id
    held = state.claims.get(instance_id)
    final = event.phase in FINAL_PHASES
    if (event.phase != "spawn" and not final) or held is None or held.host != event.host:
        return []  # start/stop/reboot failures keep the placement; stale reports change nothing
    record = state.instances.get(instance_id)
    tenant = record.tenant_id if record is not None else envelope.tenant_id
    released = Emit(
        ClaimReleased(host=event.host, reason=f"{event.phase} failed: {event.reason}"),
        instance_id,
        tenant,
    )
    if record is None or record.requested is None:
        return [released]
    if record.deletion_requested:
        # Nobody will build it now: once the claim is gone, this is how it reaches DELETED.
        log.info("deleted_after_failed_spawn", instance_id=instance_id, host=event.host)
        return [released, Emit(InstanceDeleted(host=None), instance_id, tenant)]
    if final:
        # Its boot volume or port could not be made: no other host would do better, so the
        # instance ends in ERROR with the agent's reason as its fault.
        log.info("instance_failed_for_good", instance_id=instance_id, reason=event.reason)
        return [released, _refused(record, event.reason, record.attempts)]
    failures = f"failed on {_hosts(record.failed_hosts)}: {record.last_failure}"
    if record.attempts >= config.max_attempts:
        return [released, _refused(record, failures, record.attempts)]
    emit, _ = _place(config, state.view().release(instance_id), record, after=failures)
    return [released, emit]


def _instance_deleted(
    config: SchedulerConfig, state: SchedulerState, envelope: Envelope
) -> list[Emit]:
    held = state.claims.get(envelope.aggregate_id)
    if held is None:
        return []
    release = ClaimReleased(host=held.host, reason="instance deleted")
    return [Emit(release, envelope.aggregate_id, envelope.tenant_id)]


def _alive(config: SchedulerConfig, state: SchedulerState, envelope: Envelope) -> list[Emit]:
    host = envelope.aggregate_id
    if host not in state.down or host not in state.hosts:
        return []
    # Up again only on news newer than what it was marked down after: both times are the
    # host's own clock, so a skewed clock cannot keep a live host down.
    marked_after = state.down[host]
    if marked_after is not None and envelope.occurred_at <= marked_after:
        return []
    log.info("host_up", host=host)
    return [Emit(HostMarkedUp(), host, None)]


Decider = Callable[[SchedulerConfig, SchedulerState, Envelope], list[Emit]]

_DECIDERS: dict[type[Any], Decider] = {
    InstanceRequested: _requested,
    ServerGroupCreated: _group_created,
    InstanceDeletionRequested: _deletion_requested,
    InstanceFailed: _instance_failed,
    InstanceDeleted: _instance_deleted,
    HostHeartbeat: _alive,
    HostRegistered: _alive,
    LiveMigrationRequested: migration.requested,
    InstanceResizeRequested: resize.requested,
    HostDrainRequested: drain.requested,
    RebalanceRequested: rebalance.requested,
    EvacuationRequested: evacuation.requested,
}


# -- placing ----------------------------------------------------------------------------------


def _place(
    config: SchedulerConfig,
    view: PlacementView,
    record: InstanceRecord,
    *,
    claim: bool = False,
    after: str = "",
) -> tuple[Emit, PlacementView]:
    """Place ``record`` on the best host of ``view`` (attempt ``attempts + 1``), or refuse it.

    Returns the event and the view to decide the next instance against: with the claim taken
    when ``claim`` is set, else ``view`` unchanged (the runtime's fold takes it).
    """
    attempt = record.attempts + 1
    result = select_host(record.placement_request(), view, Policy(weigher=config.weigher))
    # A refusal carries one rejection per host: at 10,000 hosts, skip the loop unless shown.
    for rejection in result.rejections if log.is_enabled_for(logging.DEBUG) else ():
        log.debug(
            "host_rejected",
            instance_id=record.instance_id,
            host=rejection.host,
            filter=rejection.filter,
            reason=rejection.reason,
        )
    if not isinstance(result, Placement):
        return _refused(
            record, f"{after}; then {result.reason}" if after else result.reason, attempt
        ), view
    host = view.hosts[result.host]
    scheduled = record.placed_on(host, attempt)
    log.debug("instance_scheduled", instance_id=record.instance_id, host=host.name, attempt=attempt)
    if claim:
        view = view.claim(record.placement_request(), host.name)
    return Emit(scheduled, record.instance_id, record.tenant_id), view


def _refused(record: InstanceRecord, reason: str, attempts: int) -> Emit:
    log.info("no_valid_host", instance_id=record.instance_id, reason=reason, attempts=attempts)
    failed = InstanceSchedulingFailed(reason=reason, attempts=attempts)
    return Emit(failed, record.instance_id, record.tenant_id)


def _hosts(names: Sequence[str]) -> str:
    return f"host {names[0]}" if len(names) == 1 else f"hosts {', '.join(names)}"
