"""``evolve``: how each event changes billing's state. Pure and deterministic; event time only.

Shared: the billing service folds its state with it, the gateway its projection of usage and
invoices, and the audit its replay of the log, so all three see the same usage.
"""

from __future__ import annotations

import bisect
from datetime import UTC, datetime

from virga_events import Envelope
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.billing import InvoiceIssued, PricesSet
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceDomainLost,
    InstanceRebooted,
    InstanceResized,
    InstanceResizeStopped,
    InstanceRestarted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.l3 import (
    FloatingIpAllocated,
    FloatingIpReleased,
    RouterCreated,
    RouterDeleted,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted, VolumeExtended
from virga_rating.state import (
    TX_HOSTS_KEPT,
    BillingState,
    EgressSample,
    InstanceUsage,
    Interval,
    PublicIpUsage,
    VolumeSpan,
    VolumeUsage,
)
from virga_runtime.folding import Folds

folds: Folds[BillingState] = Folds()
"""What each event billing reads does to its state; every other type leaves it alone."""


def _instance(state: BillingState, envelope: Envelope) -> InstanceUsage:
    usage = state.instances.get(envelope.aggregate_id)
    if usage is None:
        usage = state.instances[envelope.aggregate_id] = InstanceUsage()
    if usage.tenant is None and envelope.tenant_id is not None:
        usage.tenant = envelope.tenant_id
    return usage


def _flavor(
    state: BillingState, envelope: Envelope, event: InstanceRequested | InstanceScheduled
) -> None:
    _instance(state, envelope).flavor = event.flavor.name


folds.add(InstanceRequested, _flavor)
folds.add(InstanceScheduled, _flavor)


def _running(
    state: BillingState,
    envelope: Envelope,
    event: InstanceStarted | InstanceRebooted | InstanceRestarted,
) -> None:
    usage = _instance(state, envelope)
    if usage.deleted or usage.running_since is not None:
        return  # a reboot of a running instance goes on billing the same interval
    usage.running_since = envelope.occurred_at
    # A domain (re)started from shut off counts its traffic from zero again.
    usage.tx_counters.clear()


folds.add(InstanceStarted, _running)
folds.add(InstanceRebooted, _running)
folds.add(InstanceRestarted, _running)  # after a stop it did not ask for: a new interval


def _stopped(
    state: BillingState, envelope: Envelope, event: InstanceStopped | InstanceDomainLost
) -> None:
    _close_interval(_instance(state, envelope), envelope.occurred_at)


folds.add(InstanceStopped, _stopped)
folds.add(InstanceDomainLost, _stopped)


@folds.on(InstanceResizeStopped)
def _stopped_for_resize(
    state: BillingState, envelope: Envelope, event: InstanceResizeStopped
) -> None:
    usage = _instance(state, envelope)
    if event.was_running:  # stopped, as by a stop request: its old flavor's interval ends
        _close_interval(usage, envelope.occurred_at)
    # Every interval so far ran as the old flavor: say so, since from InstanceResized on the
    # instance's flavor (what an interval naming none is rated at) is the new one. Only a
    # resize names flavors: an interval closed otherwise names none, whichever order the
    # instance's request and its agent's reports were folded in (a rebuild reads the topics
    # in another order than the live service did, and the states must agree).
    usage.intervals = [
        i if i.flavor is not None else Interval(i.start, i.end, usage.flavor)
        for i in usage.intervals
    ]


@folds.on(InstanceResized)
def _resized(state: BillingState, envelope: Envelope, event: InstanceResized) -> None:
    """The new flavor from here: it runs again (a new interval) if it ran before."""
    usage = _instance(state, envelope)
    _close_interval(usage, envelope.occurred_at)  # none open, unless a stop was never seen
    usage.flavor = event.flavor.name
    if event.running and not usage.deleted:
        usage.running_since = envelope.occurred_at
        usage.tx_counters.clear()


@folds.on(InstanceDeleted)
def _deleted(state: BillingState, envelope: Envelope, event: InstanceDeleted) -> None:
    usage = _instance(state, envelope)
    _close_interval(usage, envelope.occurred_at)
    usage.deleted = True


def _close_interval(usage: InstanceUsage, at: datetime) -> None:
    if usage.running_since is not None:
        usage.intervals.append(Interval(usage.running_since, at))
        usage.running_since = None


@folds.on(UsageSampled)
def _sampled(state: BillingState, envelope: Envelope, event: UsageSampled) -> None:
    usage = _instance(state, envelope)
    current = event.net_tx_bytes
    # Counters are cumulative since the domain started on this host; one lower than the last
    # was reset (the domain restarted between samples), so all of it is new traffic. Each host
    # has its own: after a live migration the destination's begins at zero, and the order in
    # which the two hosts' samples are folded does not change what is billed.
    counters = usage.tx_counters
    last = counters.pop(event.host, None)
    sent = current if last is None or current < last else current - last
    counters[event.host] = current  # the latest host last
    while len(counters) > TX_HOSTS_KEPT:
        del counters[next(iter(counters))]
    if sent > 0:
        at = envelope.occurred_at
        if usage.egress and _hour(usage.egress[-1].at) == _hour(at):
            usage.egress[-1] = EgressSample(at, usage.egress[-1].bytes + sent)
        else:
            usage.egress.append(EgressSample(at, sent))


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@folds.on(PricesSet)
def _prices(state: BillingState, envelope: Envelope, event: PricesSet) -> None:
    at = bisect.bisect_right([p.effective_from for p in state.prices], event.effective_from)
    state.prices.insert(at, event)


@folds.on(InvoiceIssued)
def _invoiced(state: BillingState, envelope: Envelope, event: InvoiceIssued) -> None:
    state.invoices.setdefault(event.tenant, {})[event.period] = event


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


@folds.on(VolumeCreated)
def _volume_created(state: BillingState, envelope: Envelope, event: VolumeCreated) -> None:
    volume = _volume(state, envelope)
    if volume.deleted or volume.since is not None:
        return  # a repeated creation fact changes nothing
    volume.size_gb = event.size_gb
    volume.since = envelope.occurred_at


@folds.on(VolumeExtended)
def _volume_extended(state: BillingState, envelope: Envelope, event: VolumeExtended) -> None:
    volume = _volume(state, envelope)
    if volume.since is None or event.size_gb == volume.size_gb:
        return
    # The old size is billed up to the extend, the new one from it on.
    _close_span(volume, envelope.occurred_at)
    volume.size_gb = event.size_gb
    volume.since = envelope.occurred_at


@folds.on(VolumeDeleted)
def _volume_deleted(state: BillingState, envelope: Envelope, event: VolumeDeleted) -> None:
    volume = _volume(state, envelope)
    _close_span(volume, envelope.occurred_at)
    volume.deleted = True


def _public_ip(state: BillingState, envelope: Envelope) -> PublicIpUsage:
    public_ip = state.public_ips.get(envelope.aggregate_id)
    if public_ip is None:
        public_ip = state.public_ips[envelope.aggregate_id] = PublicIpUsage()
    if public_ip.tenant is None and envelope.tenant_id is not None:
        public_ip.tenant = envelope.tenant_id
    return public_ip


def _public_ip_held(
    state: BillingState, envelope: Envelope, event: FloatingIpAllocated | RouterCreated
) -> None:
    public_ip = _public_ip(state, envelope)
    if public_ip.released or public_ip.since is not None or public_ip.spans:
        return  # a repeated allocation fact changes nothing
    public_ip.since = envelope.occurred_at


def _public_ip_released(
    state: BillingState, envelope: Envelope, event: FloatingIpReleased | RouterDeleted
) -> None:
    public_ip = _public_ip(state, envelope)
    if public_ip.since is not None:
        public_ip.spans.append(Interval(public_ip.since, envelope.occurred_at))
        public_ip.since = None
    public_ip.released = True


folds.add(FloatingIpAllocated, _public_ip_held)
folds.add(RouterCreated, _public_ip_held)
folds.add(FloatingIpReleased, _public_ip_released)
folds.add(RouterDeleted, _public_ip_released)

evolve = folds.evolve
"""Fold one event into ``state`` (mutated and returned); events billing ignores pass."""

FOLDED_TYPES: frozenset[type] = folds.event_types
"""The event types that change billing's state; every other passes through `evolve`."""
