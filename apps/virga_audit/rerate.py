"""`rerate`: invoices recomputed from raw events with billing's own fold and rating, compared
with the `InvoiceIssued` events on the log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from virga_audit.replay import replay_state, service_definition
from virga_eventlog import KafkaSettings
from virga_rating.rating import adjustments, bounds, rate_tenant, total
from virga_rating.state import BillingState

END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Difference:
    """One figure of a tenant's month where the log and the issued invoices disagree."""

    tenant: str
    period: str
    resource_id: str
    """The resource, or ``-`` for the invoice as a whole."""
    charge: str
    """The kind of charge (``compute``, ``egress``, ``volume``), or ``invoice``/``total``."""
    detail: str

    def __str__(self) -> str:
        return f"{self.tenant} {self.period} {self.resource_id} {self.charge}: {self.detail}"


def compare(state: BillingState, period: str) -> list[Difference]:
    """Each tenant's re-rated `period` against what was billed for it: the invoice's own lines
    plus the adjustments later invoices made to it, line by (resource, charge, unit price); and
    each issued invoice's total against the sum of its lines."""
    bounds(period)  # ValueError for anything but YYYY-MM
    found: list[Difference] = []
    for tenant in sorted(state.tenants() | set(state.invoices)):
        rerated = rate_tenant(state, tenant, period)
        issued = state.issued(tenant)
        invoice = issued.get(period)
        if invoice is None:
            if rerated.lines:
                found.append(
                    Difference(
                        tenant, period, "-", "invoice", f"none issued; re-rated {rerated.total}"
                    )
                )
            continue
        summed = total(invoice.lines, invoice.currency)
        if Decimal(summed) != Decimal(invoice.total):
            found.append(
                Difference(
                    tenant, period, "-", "total", f"issued {invoice.total}, lines sum {summed}"
                )
            )
        billed = [
            line
            for later in issued.values()
            for line in later.lines
            if (later.period == period and line.adjusts is None) or line.adjusts == period
        ]
        for line in adjustments(period, rerated.lines, billed):
            found.append(
                Difference(
                    tenant,
                    period,
                    line.resource_id,
                    line.charge or line.kind,
                    f"re-rated minus billed at {line.unit_price}/{line.unit}: "
                    f"{line.quantity} {line.unit}, {line.amount} {invoice.currency}",
                )
            )
    return found


async def rerate(settings: KafkaSettings, period: str) -> list[Difference]:
    """Replay billing's inputs and its invoices from the whole log, then `compare`."""
    bounds(period)
    definition = service_definition("billing", settings.namespace)
    state = await replay_state(settings, definition, END_OF_TIME)
    return compare(state, period)
