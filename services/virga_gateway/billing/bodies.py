"""The request body of a price catalogue, with its constraints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from virga_gateway.validation import Body

Price = Annotated[
    str,
    msgspec.Meta(
        max_length=32,
        description='A non-negative decimal as a string, e.g. "0.0125" (up to 12 decimals).',
        examples=["0.04"],
    ),
]


class SetPrices(Body):
    """The whole catalogue, replacing the one in effect from `effective_from` on."""

    currency: Annotated[str, msgspec.Meta(description="ISO 4217 code, e.g. EUR.")]
    effective_from: Annotated[
        datetime,
        msgspec.Meta(tz=True, description="RFC 3339 instant the prices apply from: a whole hour."),
    ]
    flavor_hour: Annotated[dict[str, Price], msgspec.Meta(max_length=1000)]
    """Price of an hour of a running instance, per flavor name (known flavors only)."""
    volume_gb_month: Price
    egress_gb: Price
    """Per 10^9 bytes sent out by instances."""
    public_ip_hour: Price
