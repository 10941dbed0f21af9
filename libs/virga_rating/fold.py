"""``evolve``: how each event changes billing's state. Pure and deterministic; event time only."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import UTC, datetime

from virga_events import Envelope
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.billing import InvoiceIssued, PricesSet
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceDomainLost,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted, VolumeExtended
from virga_rating.state import (
    BillingState,
    EgressSample,
    InstanceUsage,
    Interval,
    VolumeSpan,
    VolumeUsage,
)

Fold = Callable[[BillingState, Envelope], None]


def evolve(state: BillingState, envelope: Envelope) -> BillingState:
    """Fold one event into ``state`` (mutated and returned); events billing ignores pass."""
    apply = _FOLDS.get(type(envelope.payload))
    if apply is not None:
        apply(state, envelope)
    return state


def _instance(state: BillingState, envelope: Envelope) -> InstanceUsage:
    usage = state.instances.get(envelope.aggregate_id)
    if usage is None:
        usage = state.instances[envelope.aggregate_id] = InstanceUsage()
    if usage.tenant is None and envelope.tenant_id is not None:
        usage.tenant = envelope.tenant_id
    return usage


def _flavor(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, InstanceRequested | InstanceScheduled)
    _instance(state, envelope).flavor = payload.flavor.name


def _running(state: BillingState, envelope: Envelope) -> None:
    usage = _instance(state, envelope)
    if usage.deleted or usage.running_since is not None:
        return  # a reboot of a running instance goes on billing the same interval
    usage.running_since = envelope.occurred_at
    # A domain (re)started from shut off counts its traffic from zero again.
    usage.tx_counter = None


def _stopped(state: BillingState, envelope: Envelope) -> None:
    usage = _instance(state, envelope)
    if usage.running_since is not None:
        usage.intervals.append(Interval(usage.running_since, envelope.occurred_at))
        usage.running_since = None
    if isinstance(envelope.payload, InstanceDeleted):
        usage.deleted = True


def _sampled(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, UsageSampled)
    usage = _instance(state, envelope)
    current = payload.net_tx_bytes
    last = usage.tx_counter
    # Counters are cumulative since the domain started; one lower than the last was reset
    # (the domain restarted between samples), so all of it is new traffic.
    sent = current if last is None or current < last else current - last
    usage.tx_counter = current
    if sent > 0:
        at = envelope.occurred_at
        if usage.egress and _hour(usage.egress[-1].at) == _hour(at):
            usage.egress[-1] = EgressSample(at, usage.egress[-1].bytes + sent)
        else:
            usage.egress.append(EgressSample(at, sent))


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _prices(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, PricesSet)
    at = bisect.bisect_right([p.effective_from for p in state.prices], payload.effective_from)
    state.prices.insert(at, payload)


def _invoiced(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, InvoiceIssued)
    state.invoices.setdefault(payload.tenant, {})[payload.period] = payload


def _volume(state: BillingState, envelope: Envelope) -> VolumeUsage:
    volume = state.volumes.get(envelope.aggregate_id)
    if volume is None:
        volume = state.volumes[envelope.aggregate_id] = VolumeUsage()
    if volume.tenant is None and envelope.tenant_id is not None:
        volume.tenant = envelope.tenant_id
    return volume


def _close_span(volume: VolumeUsage, at: datetime) -> None:
    if volume.since is not None:
        volume.spans.append(VolumeSpan(volume.since, at, volume.size_gb))
        volume.since = None


def _volume_created(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, VolumeCreated)
    volume = _volume(state, envelope)
    if volume.deleted or volume.since is not None:
        return  # a repeated creation fact changes nothing
    volume.size_gb = payload.size_gb
    volume.since = envelope.occurred_at


def _volume_extended(state: BillingState, envelope: Envelope) -> None:
    payload = envelope.payload
    assert isinstance(payload, VolumeExtended)
    volume = _volume(state, envelope)
    if volume.since is None or payload.size_gb == volume.size_gb:
        return
    # The old size is billed up to the extend, the new one from it on.
    _close_span(volume, envelope.occurred_at)
    volume.size_gb = payload.size_gb
    volume.since = envelope.occurred_at


def _volume_deleted(state: BillingState, envelope: Envelope) -> None:
    volume = _volume(state, envelope)
    _close_span(volume, envelope.occurred_at)
    volume.deleted = True


_FOLDS: dict[type, Fold] = {
    InstanceRequested: _flavor,
    InstanceScheduled: _flavor,
    InstanceStarted: _running,
    InstanceRebooted: _running,
    InstanceStopped: _stopped,
    InstanceDeleted: _stopped,
    InstanceDomainLost: _stopped,
    UsageSampled: _sampled,
    PricesSet: _prices,
    InvoiceIssued: _invoiced,
    VolumeCreated: _volume_created,
    VolumeExtended: _volume_extended,
    VolumeDeleted: _volume_deleted,
}

FOLDED_TYPES: frozenset[type] = frozenset(_FOLDS)
"""The event types that change billing's state; every other passes through `evolve`."""
