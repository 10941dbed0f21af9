"""What billing knows: instances' running intervals and egress, volumes' sizes over time,
prices, issued invoices.

Everything is kept in event time (``occurred_at``), so the same log always yields the same
figures however late or in whatever batches billing read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from virga_events.catalog.billing import InvoiceIssued, PricesSet


@dataclass(frozen=True, slots=True)
class Interval:
    """The instance ran from `start` to `end` (event times, UTC)."""

    start: datetime
    end: datetime
    flavor: str | None = None
    """The flavor it ran as, named only by a resize (on the intervals before it); None: the
    instance's current one (every interval of an instance never resized, a public IP's spans),
    so that the state does not depend on the order its request and its reports were folded."""


@dataclass(frozen=True, slots=True)
class EgressSample:
    """`bytes` left the instance in the samples of one UTC hour, the last of them taken at `at`.

    Samples arrive every minute or so; one record per hour keeps a month of them to ~720 per
    instance, and invoices lose nothing: prices change only at whole hours (`PUT /v1/prices`
    refuses others) and months begin at whole hours, so every sample of an hour has the price
    and month of its last one. A usage window cut inside an hour counts that hour's bytes
    where its last sample falls.
    """

    at: datetime
    bytes: int


TX_HOSTS_KEPT = 4
"""Hosts whose transmit counter an instance remembers (it migrated from and to them)."""


@dataclass(slots=True)
class InstanceUsage:
    """One instance's billable history."""

    tenant: str | None = None
    flavor: str | None = None
    """Flavor name, from InstanceRequested or InstanceScheduled."""
    running_since: datetime | None = None
    """Start of the open interval; None while stopped or deleted."""
    intervals: list[Interval] = field(default_factory=list)
    """Closed running intervals, in fold order."""
    egress: list[EgressSample] = field(default_factory=list)
    tx_counters: dict[str, int] = field(default_factory=dict)
    """Last cumulative transmit counter seen, per host that reported it (a live migration
    starts the counter again on its destination, and the source's last sample may be folded
    after the destination's first); emptied by a (re)start, when the domain's counters begin
    again at zero. At most `TX_HOSTS_KEPT` hosts, the latest."""
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class VolumeSpan:
    """The volume held `size_gb` from `start` to `end` (event times, UTC)."""

    start: datetime
    end: datetime
    size_gb: int


@dataclass(slots=True)
class VolumeUsage:
    """One volume's billable history: its size from creation to deletion."""

    tenant: str | None = None
    size_gb: int = 0
    """Current size; the open span's."""
    since: datetime | None = None
    """Start of the open span (creation or last extend); None before creation, after deletion."""
    spans: list[VolumeSpan] = field(default_factory=list)
    """Closed spans, in fold order: an extend closes one and opens the next."""
    deleted: bool = False


@dataclass(slots=True)
class PublicIpUsage:
    """One public address's billable history: a floating IP's or a router's external address,
    from its allocation to its release."""

    tenant: str | None = None
    since: datetime | None = None
    """When the open hold began; None before allocation and after release."""
    spans: list[Interval] = field(default_factory=list)
    """Closed holds (one, unless a late duplicate reopened nothing)."""
    released: bool = False


@dataclass(slots=True)
class BillingState:
    """The billing service's whole state."""

    instances: dict[str, InstanceUsage] = field(default_factory=dict)
    prices: list[PricesSet] = field(default_factory=list)
    """Every catalogue ever set, sorted by effective_from (stable: a later set wins a tie)."""
    volumes: dict[str, VolumeUsage] = field(default_factory=dict)
    invoices: dict[str, dict[str, InvoiceIssued]] = field(default_factory=dict)
    """Issued invoices by tenant, then period (``YYYY-MM``)."""
    public_ips: dict[str, PublicIpUsage] = field(default_factory=dict)
    """Floating IP or router id -> the public address it held."""

    def usage(self, tenant: str) -> dict[str, InstanceUsage]:
        """The instances of one tenant, by id."""
        return {i: u for i, u in self.instances.items() if u.tenant == tenant}

    def volume_usage(self, tenant: str) -> dict[str, VolumeUsage]:
        """The volumes of one tenant, by id."""
        return {v: u for v, u in self.volumes.items() if u.tenant == tenant}

    def public_ip_usage(self, tenant: str) -> dict[str, PublicIpUsage]:
        """The public addresses of one tenant, by floating IP or router id."""
        return {p: u for p, u in self.public_ips.items() if u.tenant == tenant}

    def tenants(self) -> set[str]:
        owners = [u.tenant for u in self.instances.values()]
        owners += [v.tenant for v in self.volumes.values()]
        owners += [p.tenant for p in self.public_ips.values()]
        return {tenant for tenant in owners if tenant is not None}

    def issued(self, tenant: str) -> dict[str, InvoiceIssued]:
        """The tenant's issued invoices by period."""
        return self.invoices.get(tenant, {})

    def first_use(self, tenant: str) -> datetime | None:
        """Event time of the tenant's earliest billable usage."""
        times = [
            moment
            for usage in self.instances.values()
            if usage.tenant == tenant
            for moment in (
                *(i.start for i in usage.intervals),
                *(s.at for s in usage.egress),
                *((usage.running_since,) if usage.running_since is not None else ()),
            )
        ]
        times += [
            moment
            for volume in self.volumes.values()
            if volume.tenant == tenant
            for moment in (
                *(s.start for s in volume.spans),
                *((volume.since,) if volume.since is not None else ()),
            )
        ]
        times += [
            moment
            for public_ip in self.public_ips.values()
            if public_ip.tenant == tenant
            for moment in (
                *(s.start for s in public_ip.spans),
                *((public_ip.since,) if public_ip.since is not None else ()),
            )
        ]
        return min(times, default=None)
