"""Billing's state as plain JSON values for its snapshot topic, and back.

Instances are written sorted by id and invoices by (tenant, period), so two states holding
the same facts snapshot to equal values.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from virga_events.catalog.billing import InvoiceIssued, PricesSet
from virga_rating.state import (
    BillingState,
    EgressSample,
    InstanceUsage,
    Interval,
    PublicIpUsage,
    VolumeSpan,
    VolumeUsage,
)

FORMAT = 4
"""Bumped when the layout changes; an unknown format is refused and the log is read instead."""


def snapshot(state: BillingState) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "instances": {i: _usage(state.instances[i]) for i in sorted(state.instances)},
        "prices": [msgspec.to_builtins(p) for p in state.prices],
        "volumes": {v: _volume(state.volumes[v]) for v in sorted(state.volumes)},
        "public_ips": {p: _public_ip(state.public_ips[p]) for p in sorted(state.public_ips)},
        "invoices": [
            msgspec.to_builtins(state.invoices[tenant][period])
            for tenant in sorted(state.invoices)
            for period in sorted(state.invoices[tenant])
        ],
    }


def restore(data: Any) -> BillingState:
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown billing snapshot format {data.get('format')!r}")
    invoices: dict[str, dict[str, InvoiceIssued]] = {}
    for raw in data["invoices"]:
        invoice = msgspec.convert(raw, InvoiceIssued)
        invoices.setdefault(invoice.tenant, {})[invoice.period] = invoice
    return BillingState(
        instances={i: _parse_usage(u) for i, u in data["instances"].items()},
        prices=[msgspec.convert(p, PricesSet) for p in data["prices"]],
        volumes={v: _parse_volume(u) for v, u in data["volumes"].items()},
        invoices=invoices,
        public_ips={p: _parse_public_ip(u) for p, u in data["public_ips"].items()},
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
        "intervals": [
            [i.start.isoformat(), i.end.isoformat(), *([i.flavor] if i.flavor else [])]
            for i in usage.intervals
        ],
        "egress": [[s.at.isoformat(), s.bytes] for s in usage.egress],
        "tx_counters": usage.tx_counters,
        "deleted": usage.deleted,
    }


def _parse_usage(data: dict[str, Any]) -> InstanceUsage:
    return InstanceUsage(
        tenant=data["tenant"],
        flavor=data["flavor"],
        running_since=_parse_time(data["running_since"]),
        # Snapshots written before resizes keep [start, end]: the current flavor's.
        intervals=[
            Interval(datetime.fromisoformat(a), datetime.fromisoformat(b), *flavor)
            for a, b, *flavor in data["intervals"]
        ],
        egress=[EgressSample(datetime.fromisoformat(at), sent) for at, sent in data["egress"]],
        tx_counters=dict(data["tx_counters"]),
        deleted=data["deleted"],
    )


def _volume(volume: VolumeUsage) -> dict[str, Any]:
    return {
        "tenant": volume.tenant,
        "size_gb": volume.size_gb,
        "since": _time(volume.since),
        "spans": [[s.start.isoformat(), s.end.isoformat(), s.size_gb] for s in volume.spans],
        "deleted": volume.deleted,
    }


def _parse_volume(data: dict[str, Any]) -> VolumeUsage:
    return VolumeUsage(
        tenant=data["tenant"],
        size_gb=data["size_gb"],
        since=_parse_time(data["since"]),
        spans=[
            VolumeSpan(datetime.fromisoformat(a), datetime.fromisoformat(b), size)
            for a, b, size in data["spans"]
        ],
        deleted=data["deleted"],
    )


def _public_ip(public_ip: PublicIpUsage) -> dict[str, Any]:
    return {
        "tenant": public_ip.tenant,
        "since": _time(public_ip.since),
        "spans": [[s.start.isoformat(), s.end.isoformat()] for s in public_ip.spans],
        "released": public_ip.released,
    }


def _parse_public_ip(data: dict[str, Any]) -> PublicIpUsage:
    return PublicIpUsage(
        tenant=data["tenant"],
        since=_parse_time(data["since"]),
        spans=[
            Interval(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in data["spans"]
        ],
        released=data["released"],
    )
