"""Billing's state as plain JSON values for its snapshot topic, and back.

Instances are written sorted by id and invoices by (tenant, period), so two states holding
the same facts snapshot to equal values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from virga_billing.state import BillingState, EgressSample, InstanceUsage, Interval
from virga_events.catalog.billing import InvoiceIssued, PricesSet

FORMAT = 1
"""Bumped when the layout changes; an unknown format is refused and the log is read instead."""


def snapshot(state: BillingState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "instances": {i: _usage(state.instances[i]) for i in sorted(state.instances)},
        "prices": [msgspec.to_builtins(p) for p in state.prices],
        "invoices": [msgspec.to_builtins(state.invoices[k]) for k in sorted(state.invoices)],
    }


def restore(data: Any) -> BillingState:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown billing snapshot format {data.get('format')!r}")
    invoices = [msgspec.convert(i, InvoiceIssued) for i in data["invoices"]]
    return BillingState(
        instances={i: _parse_usage(u) for i, u in data["instances"].items()},
        prices=[msgspec.convert(p, PricesSet) for p in data["prices"]],
        invoices={(i.tenant, i.period): i for i in invoices},
    )


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _usage(usage: InstanceUsage) -> dict[str, Any]:
    return {
        "tenant": usage.tenant,
        "flavor": usage.flavor,
        "running_since": _time(usage.running_since),
        "intervals": [[i.start.isoformat(), i.end.isoformat()] for i in usage.intervals],
        "egress": [[s.at.isoformat(), s.bytes] for s in usage.egress],
        "tx_counter": usage.tx_counter,
        "deleted": usage.deleted,
    }


def _parse_usage(data: dict[str, Any]) -> InstanceUsage:
    return InstanceUsage(
        tenant=data["tenant"],
        flavor=data["flavor"],
        running_since=_parse_time(data["running_since"]),
        intervals=[
            Interval(datetime.fromisoformat(a), datetime.fromisoformat(b))
            for a, b in data["intervals"]
        ],
        egress=[EgressSample(datetime.fromisoformat(at), sent) for at, sent in data["egress"]],
        tx_counter=data["tx_counter"],
        deleted=data["deleted"],
    )
