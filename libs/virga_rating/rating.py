"""Rating: usage and the price catalogue to a tenant's invoice for one UTC month. Pure.

Arithmetic is exact (``Fraction`` for quantities times prices); each line's amount is rounded
once, half to even, to the currency's minor unit. The README states the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

from virga_events.catalog.billing import InvoiceIssued, InvoiceLine, PricesSet
from virga_rating.currencies import MINOR_UNITS
from virga_rating.state import BillingState, InstanceUsage, PublicIpUsage, VolumeUsage

Invoice = InvoiceIssued
"""What `rate` returns is exactly what the service issues."""


SECONDS_PER_HOUR = 3600
BYTES_PER_GB = 10**9
"""Egress is billed per decimal gigabyte, as network traffic is sold."""
HOUR_PLACES = 6
"""Hours and GB-months are shown to 6 decimal places (display only: amounts use exact
seconds)."""


def minor_units(currency: str) -> int:
    return MINOR_UNITS.get(currency.upper(), 2)


# -- periods -----------------------------------------------------------------------------------


def period_of(moment: datetime) -> str:
    """The UTC month ``YYYY-MM`` holding ``moment``."""
    utc = moment.astimezone(UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a ``YYYY-MM`` period, in UTC; ValueError for anything else."""
    year, month = (int(part) for part in period.split("-", 1))
    if len(period) != 7 or not 1 <= month <= 12:
        raise ValueError(f"a period is YYYY-MM, got {period!r}")
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def next_period(period: str) -> str:
    return period_of(bounds(period)[1])


# -- rating ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    resource_id: str
    kind: str
    unit_price: Decimal


def rate(
    tenant: str,
    usage: Mapping[str, InstanceUsage],
    prices: Sequence[PricesSet],
    period: str,
    volumes: Mapping[str, VolumeUsage] | None = None,
    public_ips: Mapping[str, PublicIpUsage] | None = None,
) -> Invoice:
    """The invoice of ``tenant`` for ``period`` from its instances' ``usage``, its ``volumes``
    and the catalogue history ``prices`` (sorted by effective_from). No adjustments.

    An interval still open counts to the end of the period. Usage before any catalogue, or of
    a flavor the catalogue has no price for, is not charged.
    """
    start, end = bounds(period)
    lines, currency = charge_lines(usage, prices, start, end, volumes, public_ips)
    return _invoice(tenant, period, lines, currency)


def charge_lines(
    usage: Mapping[str, InstanceUsage],
    prices: Sequence[PricesSet],
    start: datetime,
    end: datetime,
    volumes: Mapping[str, VolumeUsage] | None = None,
    public_ips: Mapping[str, PublicIpUsage] | None = None,
) -> tuple[list[InvoiceLine], str]:
    """The charges of [start, end) as lines, each rounded once, and their currency: what
    `rate` puts on an invoice, for any window (``GET /v1/usage``). Open intervals count to
    ``end``; a volume's GB-months are shares of each calendar month the window crosses."""
    hours: dict[_Key, Fraction] = {}
    egress: dict[_Key, int] = {}
    for instance_id in sorted(usage):
        record = usage[instance_id]
        ranges = [(i.start, i.end, i.flavor or record.flavor) for i in record.intervals]
        if record.running_since is not None:
            ranges.append((record.running_since, end, record.flavor))
        for since, until, flavor in ranges:
            for a, b, catalogue in _segments(prices, max(since, start), min(until, end)):
                price = catalogue.flavor_hour.get(flavor or "")
                if price is not None:
                    key = _Key(instance_id, "compute", Decimal(price))
                    hours[key] = hours.get(key, Fraction(0)) + _seconds(b - a) / SECONDS_PER_HOUR
        for sample in record.egress:
            in_effect = _in_effect(prices, sample.at)
            if start <= sample.at < end and in_effect is not None:
                key = _Key(instance_id, "egress", Decimal(in_effect.egress_gb))
                egress[key] = egress.get(key, 0) + sample.bytes
    for holder_id, public_ip in sorted((public_ips or {}).items()):
        held = [(i.start, i.end) for i in public_ip.spans]
        if public_ip.since is not None:
            held.append((public_ip.since, end))
        for since, until in held:
            for a, b, catalogue in _segments(prices, max(since, start), min(until, end)):
                key = _Key(holder_id, "public_ip", Decimal(catalogue.public_ip_hour))
                hours[key] = hours.get(key, Fraction(0)) + _seconds(b - a) / SECONDS_PER_HOUR
    gb_months: dict[_Key, Fraction] = {}
    for volume_id, volume in sorted((volumes or {}).items()):
        spans = [(s.start, s.end, s.size_gb) for s in volume.spans]
        if volume.since is not None:
            spans.append((volume.since, end, volume.size_gb))
        for since, until, size_gb in spans:
            for piece_start, piece_end in _months(max(since, start), min(until, end)):
                month_start, month_end = bounds(period_of(piece_start))
                month_seconds = _seconds(month_end - month_start)
                for a, b, catalogue in _segments(prices, piece_start, piece_end):
                    key = _Key(volume_id, "volume", Decimal(catalogue.volume_gb_month))
                    share = size_gb * _seconds(b - a) / month_seconds
                    gb_months[key] = gb_months.get(key, Fraction(0)) + share
    currency = _currency(prices, end)
    places = minor_units(currency)
    lines = [
        _line(key, quantity, _plain(_round(quantity, HOUR_PLACES)), "hour", places)
        for key, quantity in hours.items()
    ]
    lines += [
        _line(key, quantity, _plain(_round(quantity, HOUR_PLACES)), "GB-month", places)
        for key, quantity in gb_months.items()
    ]
    lines += [
        _line(key, Fraction(sent, BYTES_PER_GB), _plain(Decimal(sent).scaleb(-9)), "GB", places)
        for key, sent in egress.items()
    ]
    return lines, currency


def total(lines: Iterable[InvoiceLine], currency: str) -> str:
    """The sum of rounded line amounts, shown to the currency's minor unit."""
    places = minor_units(currency)
    summed = sum((Decimal(line.amount) for line in lines), Decimal(0))
    return _plain(summed.quantize(Decimal(1).scaleb(-places)))


def rate_tenant(state: BillingState, tenant: str, period: str) -> Invoice:
    """``rate`` for one tenant of ``state``: its instances and volumes, no adjustments."""
    return rate(
        tenant,
        state.usage(tenant),
        state.prices,
        period,
        volumes=state.volume_usage(tenant),
        public_ips=state.public_ip_usage(tenant),
    )


def rate_window(
    state: BillingState, tenant: str, start: datetime, end: datetime
) -> tuple[list[InvoiceLine], str]:
    """``charge_lines`` for one tenant of ``state`` over [start, end): its usage so far."""
    return charge_lines(
        state.usage(tenant),
        state.prices,
        start,
        end,
        volumes=state.volume_usage(tenant),
        public_ips=state.public_ip_usage(tenant),
    )


def issue(state: BillingState, tenant: str, period: str, closed: Iterable[str]) -> Invoice:
    """The invoice to issue for ``period``: its own usage, plus an ``adjustment`` line for each
    charge of an earlier ``closed`` (already issued) period whose re-rated figure now differs
    from what was billed for it, on that invoice and in adjustments since."""
    own = rate_tenant(state, tenant, period)
    lines = list(own.lines)
    for earlier in sorted(p for p in closed if p < period):
        rerated = rate_tenant(state, tenant, earlier)
        billed = [
            line
            for invoice in state.issued(tenant).values()
            for line in invoice.lines
            if (invoice.period == earlier and line.adjusts is None) or line.adjusts == earlier
        ]
        lines += adjustments(earlier, rerated.lines, billed)
    return _invoice(tenant, period, lines, own.currency or _currency(state.prices, None))


def adjustments(
    period: str, rerated: Iterable[InvoiceLine], billed: Iterable[InvoiceLine]
) -> list[InvoiceLine]:
    """Lines that bring what was ``billed`` for ``period`` to what it ``rerated`` to now.

    Charges match on (resource, kind, unit price); each adjustment is the difference of two
    already rounded amounts, so it needs no rounding of its own.
    """
    totals: dict[tuple[str, str, Decimal], list[Decimal]] = {}
    units: dict[tuple[str, str, Decimal], str] = {}
    for sign, lines in ((1, rerated), (-1, billed)):
        for line in lines:
            key = (line.resource_id, line.charge or line.kind, Decimal(line.unit_price))
            quantity, amount = totals.setdefault(key, [Decimal(0), Decimal(0)])
            totals[key] = [
                quantity + sign * Decimal(line.quantity),
                amount + sign * Decimal(line.amount),
            ]
            units[key] = line.unit
    return [
        InvoiceLine(
            resource_id=resource_id,
            kind="adjustment",
            quantity=_plain(quantity),
            unit=units[(resource_id, kind, price)],
            unit_price=_plain(price),
            amount=_plain(amount),
            adjusts=period,
            charge=kind,
        )
        for (resource_id, kind, price), (quantity, amount) in sorted(totals.items())
        if quantity or amount
    ]


# -- helpers -----------------------------------------------------------------------------------


def _segments(
    prices: Sequence[PricesSet], start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime, PricesSet]]:
    """[start, end) cut where the catalogue changes, with the catalogue of each piece."""
    for index, catalogue in enumerate(prices):
        following = prices[index + 1].effective_from if index + 1 < len(prices) else end
        a, b = max(start, catalogue.effective_from), min(end, following)
        if a < b:
            yield a, b, catalogue


def _months(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) cut where calendar months (UTC) begin; nothing when empty."""
    while start < end:
        month_end = bounds(period_of(start))[1]
        yield start, min(end, month_end)
        start = month_end


def _in_effect(prices: Sequence[PricesSet], moment: datetime) -> PricesSet | None:
    found = None
    for catalogue in prices:
        if catalogue.effective_from > moment:
            break
        found = catalogue
    return found


def _currency(prices: Sequence[PricesSet], before: datetime | None) -> str:
    usable = [p for p in prices if before is None or p.effective_from < before]
    return usable[-1].currency if usable else ""


def _seconds(span: timedelta) -> Fraction:
    return Fraction(span.days * 86400 + span.seconds) + Fraction(span.microseconds, 10**6)


def _round(value: Fraction, places: int) -> Decimal:
    """Half to even, exactly (``round`` of a Fraction ties to even)."""
    return Decimal(round(value * 10**places)).scaleb(-places)


def _plain(value: Decimal) -> str:
    return format(value, "f")


def _line(key: _Key, quantity: Fraction, shown: str, unit: str, places: int) -> InvoiceLine:
    return InvoiceLine(
        resource_id=key.resource_id,
        kind=key.kind,
        quantity=shown,
        unit=unit,
        unit_price=_plain(key.unit_price),
        amount=_plain(_round(quantity * Fraction(key.unit_price), places)),
    )


def _invoice(tenant: str, period: str, lines: list[InvoiceLine], currency: str) -> Invoice:
    return InvoiceIssued(
        tenant=tenant,
        period=period,
        lines=tuple(lines),
        total=total(lines, currency),
        currency=currency,
    )
