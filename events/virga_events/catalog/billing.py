"""Facts about money: the price catalogue (written by the gateway to `virga.api`) and the
invoices the billing service issues (`virga.billing`).

Amounts and prices are decimal strings (``"0.0125"``), never floats: billing is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from virga_events.registry import Event, event


@event("PricesSet")
@dataclass(frozen=True, slots=True, kw_only=True)
class PricesSet(Event):
    """An admin set the price catalogue, applying from `effective_from` on (aggregate:
    ``prices``). It replaces the whole catalogue from that instant; earlier usage keeps the
    prices in effect when it happened."""

    currency: str
    """ISO 4217 code, e.g. ``EUR``; one currency per cloud."""
    effective_from: datetime
    """First instant (UTC) these prices apply to."""
    flavor_hour: dict[str, str]
    """Price of one hour of a running instance, per flavor name."""
    volume_gb_month: str
    """Price of one GB of volume kept for one (calendar) month."""
    egress_gb: str
    """Price of one GB (10^9 bytes) sent out by instances."""
    public_ip_hour: str
    """Price of one public IP address held for one hour."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceLine:
    """One charge on an invoice: one resource, one kind of charge, one unit price."""

    resource_id: str
    """The instance (or volume, address) charged for."""
    kind: str
    """``compute``, ``egress``, ``volume``, ``public_ip``; or ``adjustment`` for a correction
    of an earlier, already issued period (see `adjusts` and `charge`)."""
    quantity: str
    """How much, in `unit` (decimal string; hours are shown to 6 places)."""
    unit: str
    """``hour``, ``GB``, ``GB-month``."""
    unit_price: str
    """Price of one `unit`, as in the catalogue."""
    amount: str
    """Charge in the currency's minor unit precision, rounded once (see the billing README)."""
    adjusts: str | None = None
    """For an adjustment: the period (``YYYY-MM``) it corrects."""
    charge: str | None = None
    """For an adjustment: the kind of charge it corrects (``compute``...)."""


@event("InvoiceIssued")
@dataclass(frozen=True, slots=True, kw_only=True)
class InvoiceIssued(Event):
    """A tenant's invoice for one closed UTC month (aggregate: tenant id). Never changes:
    later facts about that month are adjustment lines on a later invoice."""

    tenant: str
    period: str
    """``YYYY-MM`` (UTC)."""
    lines: tuple[InvoiceLine, ...]
    total: str
    """Sum of the lines' amounts."""
    currency: str
