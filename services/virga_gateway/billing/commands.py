"""What a new price catalogue decides, given the projection.

Figures come from billing's own pure core (`virga_rating`), folded into the projection by
`billing.fold`: the gateway never rates on its own, so `GET /v1/usage` and the invoices the
billing service issues are computed by the same code from the same facts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from virga_events.catalog.billing import PricesSet
from virga_gateway import validation as v
from virga_gateway.billing.bodies import SetPrices
from virga_gateway.billing.views import prices_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, invalid_fields
from virga_gateway.state import GatewayState
from virga_rating.currencies import ISO_4217
from virga_rating.state import BillingState
from virga_runtime.service import Emit

PRICES_AGGREGATE = "prices"
"""Every PricesSet has this aggregate id: one catalogue history, in one partition."""

_DECIMAL = re.compile(r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?$")


def validate_prices(value: object) -> SetPrices:
    """A JSON value as a `SetPrices` body; 422 naming the field whose type is wrong."""
    return v.validate(value, SetPrices)


def set_prices(state: GatewayState, body: SetPrices) -> Outcome:
    """A `PricesSet`; 422 naming each malformed price, an unknown currency or flavor."""
    errors: list[FieldError] = []
    if body.currency not in ISO_4217:
        errors.append(FieldError("currency", "must be an ISO 4217 currency code such as EUR"))
    prices = {
        "volume_gb_month": body.volume_gb_month,
        "egress_gb": body.egress_gb,
        "public_ip_hour": body.public_ip_hour,
        **{f"flavor_hour.{name}": price for name, price in body.flavor_hour.items()},
    }
    for field, price in prices.items():
        if not _DECIMAL.match(price):
            errors.append(
                FieldError(field, f'must be a non-negative decimal string, not "{price}"')
            )
    effective_from = body.effective_from.astimezone(UTC)
    if effective_from != effective_from.replace(minute=0, second=0, microsecond=0):
        # Egress is kept per hour (`virga_rating.state.EgressSample`): exact only if prices
        # change at whole hours.
        errors.append(FieldError("effective_from", "must be a whole hour (UTC)"))
    for name in body.flavor_hour:
        if name not in state.flavors:
            errors.append(FieldError(f"flavor_hour.{name}", f"no flavor named {name}"))
    if errors:
        raise invalid_fields(errors)
    event = _catalogue(body, effective_from)
    history = state.billing.prices
    if event in history:  # the same catalogue again: it is already there, once
        return Outcome(200, (), lambda s: prices_view(event))
    repriced = _repriced_until(history, effective_from, accrued_until(state.billing))
    if repriced is not None:
        earliest = _whole_hour_from(repriced).strftime("%Y-%m-%dT%H:%M:%SZ")
        message = (
            f"would re-price usage already accrued (up to {repriced.isoformat()}) under the "
            f"catalogue in effect then; usage keeps its prices: {earliest} at the earliest"
        )
        raise invalid_fields([FieldError("effective_from", message)])
    return Outcome(200, (Emit(event, PRICES_AGGREGATE, None),), lambda s: prices_view(event))


def _catalogue(body: SetPrices, effective_from: datetime) -> PricesSet:
    return PricesSet(
        currency=body.currency,
        effective_from=effective_from,
        # Canonical decimals: "0.10" and "0.1" are one price, and lines split by price.
        flavor_hour={name: _canonical(p) for name, p in sorted(body.flavor_hour.items())},
        volume_gb_month=_canonical(body.volume_gb_month),
        egress_gb=_canonical(body.egress_gb),
        public_ip_hour=_canonical(body.public_ip_hour),
    )


def _whole_hour_from(moment: datetime) -> datetime:
    """`moment` if it is a whole hour, else the next one."""
    hour = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return hour if hour == moment else hour + timedelta(hours=1)


def _repriced_until(
    history: list[PricesSet], effective_from: datetime, accrued: datetime | None
) -> datetime | None:
    """The end of the usage a catalogue from `effective_from` would re-price, if any: usage
    already recorded after `effective_from` while an earlier catalogue was in effect (usage
    that had no price yet may be priced by a first catalogue set back to its start)."""
    if accrued is None or effective_from >= accrued:
        return None
    before = [p for p in history if p.effective_from <= effective_from]
    after = [p.effective_from for p in history if p.effective_from > effective_from]
    governed_until = min([accrued, *after])
    return governed_until if before and effective_from < governed_until else None


def accrued_until(billing: BillingState) -> datetime | None:
    """The latest event time of the usage the log records (runs, samples, volume sizes);
    running instances send a sample every few minutes, so in practice it is about now."""
    moments: list[datetime] = []
    for instance in billing.instances.values():
        moments += [i.end for i in instance.intervals] + [e.at for e in instance.egress]
        moments += [instance.running_since] if instance.running_since is not None else []
    for volume in billing.volumes.values():
        moments += [span.end for span in volume.spans]
        moments += [volume.since] if volume.since is not None else []
    return max(moments, default=None)


def _canonical(price: str) -> str:
    return format(Decimal(price), "f")
