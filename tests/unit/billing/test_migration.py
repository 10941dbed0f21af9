"""Billing across a live migration: one running interval, no gap and no second charge, and
egress counted once whatever order the two hosts' samples are folded in."""

from __future__ import annotations

import itertools

from tests.unit.billing.billing_support import SMALL, TENANT, at, event, folded, prices

from virga_events import Envelope
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceMigrated,
    InstanceStarted,
    UsageSampled,
)
from virga_rating.rating import rate

GB = 1_000_000_000


def sample(host: str, day: int, hour: int, tx_bytes: int) -> Envelope:
    payload = UsageSampled(
        host=host,
        period_seconds=60,
        cpu_time_ns=0,
        memory_kb=0,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=tx_bytes,
    )
    return event(payload, "i-1", at(day, hour))


def migrated(source: str, destination: str, day: int, hour: int) -> Envelope:
    payload = InstanceMigrated(
        flow_id="f-1", step="migrate", host=source, destination=destination, seconds=2.0
    )
    return event(payload, "i-1", at(day, hour))


def _host(envelope: Envelope) -> str | None:
    return envelope.payload.host if isinstance(envelope.payload, UsageSampled) else None


def test_a_migrated_instance_is_billed_once_whatever_order_its_hosts_samples_arrive_in() -> None:
    before = [
        prices(at(1, month=2), "0.10", egress_gb="0.05"),
        event(InstanceRequested(name="vm", flavor=SMALL), "i-1", at(9)),
        event(InstanceStarted(host="h1"), "i-1", at(10)),
        sample("h1", 10, 1, 1 * GB),
    ]
    # h1's last sample, the move, and h2's samples, whose counter begins again at zero.
    around = [
        sample("h1", 10, 2, 3 * GB),
        migrated("h1", "h2", 10, 3),
        sample("h2", 10, 4, GB // 2),
        sample("h2", 10, 5, 2 * GB),
    ]
    after = [event(InstanceDeleted(host="h2"), "i-1", at(12))]
    # The two hosts' topics are read side by side: h1's last sample may be folded after h2's
    # (a billing service catching up, a rebuild), but each host's own samples stay in order.
    on_h2 = [e for e in around if _host(e) == "h2"]
    orders = [
        o for o in itertools.permutations(around) if [e for e in o if _host(e) == "h2"] == on_h2
    ]
    assert len(orders) == 12
    for order in orders:
        state = folded([*before, *order, *after])
        invoice = rate(TENANT, state.usage(TENANT), state.prices, "2026-03")
        lines = {(line.kind, line.quantity) for line in invoice.lines}
        # 48 h from start to deletion, one interval: no gap and no second charge at the move.
        # Egress: 3 GB on h1 and 2 GB on h2, each once.
        assert lines == {("compute", "48.000000"), ("egress", "5.000000000")}, order
