"""What a new price catalogue decides, given the projection.

Figures come from billing's own pure core (`virga_rating`), folded into the projection by
`billing.fold`: the gateway never rates on its own, so `GET /v1/usage` and the invoices the
billing service issues are computed by the same code from the same facts.
"""

from __future__ import annotations

import re
from datetime import UTC
from decimal import Decimal

from virga_events.catalog.billing import PricesSet
from virga_gateway import validation as v
from virga_gateway.billing.bodies import SetPrices
from virga_gateway.billing.views import prices_view
from virga_gateway.outcome import Outcome
from virga_gateway.problems import FieldError, invalid_fields
from virga_gateway.state import GatewayState
from virga_rating.currencies import ISO_4217
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
    event = PricesSet(
        currency=body.currency,
        effective_from=effective_from,
        # Canonical decimals: "0.10" and "0.1" are one price, and lines split by price.
        flavor_hour={name: _canonical(p) for name, p in sorted(body.flavor_hour.items())},
        volume_gb_month=_canonical(body.volume_gb_month),
        egress_gb=_canonical(body.egress_gb),
        public_ip_hour=_canonical(body.public_ip_hour),
    )
    return Outcome(200, (Emit(event, PRICES_AGGREGATE, None),), lambda s: prices_view(event))


def _canonical(price: str) -> str:
    return format(Decimal(price), "f")
