"""Billing's decisions: invoices, when a month is over and its grace has passed. Pure.

Input events decide nothing on their own: they only change usage (``evolve``). Time decides:
``tick`` issues each tenant's invoice for every closed month not yet invoiced, and the
runtime folds each ``InvoiceIssued`` back, so no month is ever invoiced twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import structlog

from virga_billing.config import BillingConfig
from virga_events import Envelope
from virga_rating.rating import issue, next_period, period_of
from virga_rating.state import BillingState
from virga_runtime.service import Emit, Intent

log = structlog.get_logger(__name__)


def decide(state: BillingState, envelope: Envelope) -> Sequence[Intent]:
    """Nothing: usage is folded, and invoices wait for their month to close (``tick``)."""
    return ()


def tick(config: BillingConfig, state: BillingState, now: datetime) -> list[Intent]:
    """Invoices for every month that ended at least ``grace_seconds`` before ``now`` and has
    none yet, oldest first; a month with nothing to charge gets none."""
    open_period = period_of(now - timedelta(seconds=config.grace_seconds))
    intents: list[Intent] = []
    for tenant in sorted(state.tenants()):
        first = state.first_use(tenant)
        if first is None:
            continue
        closed = set(state.issued(tenant))
        period = period_of(first)
        while period < open_period:
            if period not in closed:
                invoice = issue(state, tenant, period, closed)
                if invoice.lines:
                    log.info("invoice_issued", tenant=tenant, period=period, total=invoice.total)
                    intents.append(Emit(invoice, tenant, tenant))
            period = next_period(period)
    return intents
