"""`check`: the cross-service invariants (`invariants`) over a replay of every event topic."""

from __future__ import annotations

from datetime import datetime, timedelta

from virga_audit import quotas
from virga_audit.invariants import Violation, fold_all
from virga_audit.invariants import check as check_model
from virga_audit.log import event_topics, read_topics
from virga_eventlog import KafkaSettings, RecentIds
from virga_events import REGISTRY, Envelope, EventDecodeError, decode
from virga_scheduler.config import SchedulerConfig

DEFAULT_STUCK_AFTER = timedelta(minutes=15)
"""How long an instance may sit in BUILDING or DELETING without a new fact about it."""


async def check(
    settings: KafkaSettings,
    now: datetime,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    scheduler: SchedulerConfig | None = None,
) -> list[Violation]:
    """Every broken invariant as of `now`, from all event topics (read to their current ends,
    duplicates by event_id dropped, undecodable records left to `verify`).

    Hosts no admin gave ratios have those of `scheduler`; by default the scheduler's settings
    are read from this process's environment (``VIRGA_CPU_ALLOCATION_RATIO`` ...), as the
    scheduler reads them from its own.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if scheduler is None:
        scheduler = SchedulerConfig.from_env()
    envelopes: list[Envelope] = []
    recent = RecentIds()
    async for batch in read_topics(settings, await event_topics(settings)):
        for record in batch:
            if record.value is None:
                continue
            try:
                envelope = decode(record.value, REGISTRY)
            except EventDecodeError:
                continue
            if envelope.occurred_at <= now and not recent.seen(envelope.event_id):
                envelopes.append(envelope)
    found = check_model(fold_all(envelopes, scheduler), now, stuck_after)
    return found + quota_violations(quotas.fold_all(envelopes))


def quota_violations(model: quotas.QuotaModel) -> list[Violation]:
    """Each accepted request that took its tenant over a limit, as a violation."""
    return [
        Violation(
            "over-quota", v.tenant_id, f"{v.resource} at {v.usage} of {v.limit}, {v.event_id}"
        )
        for v in model.violations
    ]
