"""How long the projection keeps deleted resources' usage history: bounded memory over months.

`/v1/usage` lists a charge per resource for any window, so a deleted instance's or volume's
history must stay while a window may reach it. It leaves once its whole history lies in a
closed month, and the projection's clock (event time) is past that month's end by the
retention (VIRGA_GATEWAY_RETENTION_SECONDS): what it was charged is then on the invoices of
those months. The tenant's `pruned_until` moves to the end of that history, and a usage window
starting at or before it is refused (`usage_from`) rather than answered without it. A window
after it is answered exactly as before the pruning: nothing pruned has a moment in it.

Deterministic from the log, as the rest of retention (`virga_gateway/retention.py`): event
time, a heap of deleted records by their last moment, and a bounded set of tombstones so that
a late fact about a pruned resource does not make a new record. Pure.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta

import msgspec

from virga_events import Envelope
from virga_events.catalog.compute import InstanceDeleted
from virga_events.catalog.l3 import FloatingIpReleased, RouterDeleted
from virga_events.catalog.storage import VolumeDeleted
from virga_rating.state import BillingState, InstanceUsage, PublicIpUsage, VolumeUsage

Record = InstanceUsage | VolumeUsage | PublicIpUsage

TOMBSTONE_LIMIT = 10_000
"""Pruned resources whose late billing facts are still recognised (the newest ones)."""


class UsageRetention(msgspec.Struct):
    """The projection's bookkeeping of pruned usage history."""

    expiring: list[tuple[datetime, str, str]] = msgspec.field(default_factory=list)
    """A heap of (last moment, kind, id) of deleted instances, volumes and released public
    addresses still kept."""
    pruned_until: dict[str, datetime] = msgspec.field(default_factory=dict)
    """Tenant -> the latest moment of any of its pruned records."""
    forgotten: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of pruned records, oldest first (bounded by TOMBSTONE_LIMIT)."""


def is_pruned(retention: UsageRetention, resource_id: str) -> bool:
    return resource_id in retention.forgotten


def _last_instance_moment(usage: InstanceUsage) -> datetime | None:
    if usage.running_since is not None or not usage.deleted:
        return None
    moments = [i.end for i in usage.intervals] + [s.at for s in usage.egress]
    return max(moments, default=None)


def _last_volume_moment(volume: VolumeUsage) -> datetime | None:
    if volume.since is not None or not volume.deleted:
        return None
    return max((s.end for s in volume.spans), default=None)


def deleted(retention: UsageRetention, billing: BillingState, envelope: Envelope) -> None:
    """After billing's fold of `envelope`: queue a record its deletion settled."""
    resource_id = envelope.aggregate_id
    record: Record | None
    if isinstance(envelope.payload, InstanceDeleted):
        kind, record = "instance", billing.instances.get(resource_id)
    elif isinstance(envelope.payload, VolumeDeleted):
        kind, record = "volume", billing.volumes.get(resource_id)
    elif isinstance(envelope.payload, FloatingIpReleased | RouterDeleted):
        kind, record = "public_ip", billing.public_ips.get(resource_id)
    else:
        return
    if record is None:
        return
    # A record that never ran or held anything charges nothing: its moment is its deletion.
    last = _last_moment(record) or envelope.occurred_at
    heapq.heappush(retention.expiring, (last, kind, resource_id))


def _last_moment(record: Record) -> datetime | None:
    """The end of a settled record's history; None while it still runs or holds space."""
    if isinstance(record, InstanceUsage):
        return _last_instance_moment(record)
    if isinstance(record, PublicIpUsage):
        if record.since is not None or not record.released:
            return None
        return max((s.end for s in record.spans), default=None)
    return _last_volume_moment(record)


def cutoff(clock: datetime, retention: timedelta) -> datetime:
    """Records whose last moment is before this are pruned: the start of the month that
    holds `clock - retention`, so every earlier month is closed and past its retention."""
    # The start of `period_of`'s month, as `bounds` gives it, without the text between them:
    # this runs once per event of a rebuild.
    moment = (clock - retention).astimezone(UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC)


def prune(
    retention: UsageRetention, billing: BillingState, clock: datetime | None, keep: timedelta
) -> None:
    """Drop every queued record whose history ended before `cutoff(clock, keep)`."""
    if clock is None or not retention.expiring:
        return
    horizon = cutoff(clock, keep)
    while retention.expiring and retention.expiring[0][0] < horizon:
        _, kind, resource_id = heapq.heappop(retention.expiring)
        table: dict[str, InstanceUsage] | dict[str, VolumeUsage] | dict[str, PublicIpUsage]
        if kind == "instance":
            table = billing.instances
        else:
            table = billing.public_ips if kind == "public_ip" else billing.volumes
        record = table.get(resource_id)
        if record is None:
            continue
        last = _last_moment(record)
        if last is not None and last >= horizon:
            # A late fact moved its history on: it waits for its new last moment.
            heapq.heappush(retention.expiring, (last, kind, resource_id))
            continue
        del table[resource_id]
        if record.tenant is not None and last is not None:
            known = retention.pruned_until.get(record.tenant)
            if known is None or last > known:
                retention.pruned_until[record.tenant] = last
        retention.forgotten[resource_id] = None
        while len(retention.forgotten) > TOMBSTONE_LIMIT:
            del retention.forgotten[next(iter(retention.forgotten))]


def usage_from(retention: UsageRetention, tenant: str) -> datetime | None:
    """The earliest window start whose usage is still answered whole (None: any)."""
    return retention.pruned_until.get(tenant)
