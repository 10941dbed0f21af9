"""`check`: the cross-service invariants (`invariants`) over a replay of every event topic."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from virga_audit import invariants, quotas
from virga_audit.invariants import Violation, configured_ratios
from virga_audit.log import event_topics
from virga_audit.merge import EventTimeMerge
from virga_audit.timeline import in_event_time
from virga_eventlog import KafkaSettings, RecentIds
from virga_events import Envelope
from virga_scheduler.config import SchedulerConfig

log = structlog.get_logger(__name__)

DEFAULT_STUCK_AFTER = timedelta(minutes=15)
"""How long an instance may sit in BUILDING or DELETING without a new fact about it."""


async def check(
    settings: KafkaSettings,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    scheduler: SchedulerConfig | None = None,
    merge: EventTimeMerge | None = None,
) -> list[Violation]:
    """Every broken invariant as of `now`, from all event topics (read to their current ends,
    duplicates by event_id dropped, undecodable records left to `verify`), folded as they
    are read, in event time (`merge`: pass one to set its skew and window, or to read how
    many events it held at most).

    Hosts no admin gave ratios have those of `scheduler`; by default the scheduler's settings
    are read from this process's environment (``VIRGA_CPU_ALLOCATION_RATIO`` ...), as the
    scheduler reads them from its own.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if scheduler is None:
        scheduler = SchedulerConfig.from_env()
    recent = RecentIds()

    def keep(envelope: Envelope) -> bool:
        return envelope.occurred_at <= now and not recent.seen(envelope.event_id)

    cloud = invariants.CloudModel(default_ratios=configured_ratios(scheduler))
    usage = quotas.QuotaModel()
    topics = await event_topics(settings)
    merge = merge if merge is not None else EventTimeMerge()
    async for batch in in_event_time(settings, topics, keep, merge):
        for envelope in batch:
            invariants.fold(cloud, envelope)
            quotas.fold(usage, envelope)
    if merge.late:  # the log changed under the read: no partition is read past its end
        log.warning("events_folded_out_of_order", namespace=settings.namespace, late=merge.late)
    found = invariants.check(cloud, now, stuck_after)
    return found + quota_violations(usage)


def quota_violations(model: quotas.QuotaModel) -> list[Violation]:
    """Each accepted request that took its tenant over a limit, as a violation."""
    return [
        Violation(
            "over-quota", v.tenant_id, f"{v.resource} at {v.usage} of {v.limit}, {v.event_id}"
        )
        for v in model.violations
    ]
