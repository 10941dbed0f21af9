"""Billing against the real broker: lifecycle, samples and prices in, one invoice out, and a
restart that rebuilds the same state and issues nothing twice.

The test writes a month two months back, so that month is closed and past its grace now.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from tests.support.kafka import read_events, serving

from virga_billing.config import BillingConfig
from virga_billing.core import snapshot
from virga_billing.service import definition
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.billing import InvoiceIssued, PricesSet
from virga_events.catalog.compute import InstanceStarted, InstanceStopped, UsageSampled
from virga_rating.rating import bounds, period_of
from virga_rating.state import BillingState
from virga_runtime import RunnerConfig, ServiceRunner
from virga_runtime.service import Intent

pytestmark = pytest.mark.kafka

SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=10)
PERIOD = period_of(datetime.now(UTC).replace(day=1) - timedelta(days=40))
START = bounds(PERIOD)[0]


def day(n: int, hour: int = 0) -> datetime:
    return START + timedelta(days=n - 1, hours=hour)


class Cloud:
    """One namespace on the test broker, a writer for others' events, billing runners."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.namespace = f"bil{uuid.uuid4().hex[:10]}"
        self.settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=self.namespace)
        self.writer = EventWriter(self.settings, transactional_id=f"{self.namespace}-test-writer")
        self.config = BillingConfig(namespace=self.namespace, grace_seconds=60, tick_seconds=0.2)
        self.ticks = 0
        """How many ticks billing runners have begun (each after the one before it committed)."""

    async def write(self, service: str, *facts: tuple[Event, str, datetime]) -> None:
        async with self.writer.transaction() as txn:
            for payload, aggregate_id, when in facts:
                envelope = new_event(
                    payload,
                    aggregate_id=aggregate_id,
                    tenant_id="t-1",
                    producer=service,
                    occurred_at=when,
                )
                await txn.append(event_topic(service, self.namespace), envelope)

    async def invoices(self) -> list[Envelope]:
        events = await read_events(self.bootstrap, event_topic("billing", self.namespace), REGISTRY)
        return [e for e in events if isinstance(e.payload, InvoiceIssued)]

    @asynccontextmanager
    async def billing(self, *, snapshot: bool) -> AsyncIterator[ServiceRunner[BillingState]]:
        service = definition(self.config)
        tick = service.tick
        assert tick is not None

        def counted(state: BillingState, now: datetime) -> Sequence[Intent]:
            self.ticks += 1
            return tick(state, now)

        service = dataclasses.replace(service, tick=counted)
        runner = ServiceRunner(service, self.settings, RunnerConfig())
        async with serving(runner, snapshot=snapshot):
            yield runner


@pytest.fixture
async def cloud(kafka_bootstrap: str) -> AsyncIterator[Cloud]:
    cloud = Cloud(kafka_bootstrap)
    await ensure_topics(cloud.settings, virga_topics(namespace=cloud.namespace))
    await cloud.writer.start()
    try:
        yield cloud
    finally:
        await cloud.writer.stop()


async def ticks_pass(cloud: Cloud, ticks: int = 3, seconds: float = 20) -> None:
    """Wait until `ticks` whole ticks have run (and committed whatever they decided) after this
    call began: the tick loop is serial, so tick n+1 begins only once tick n's work is done."""
    target = cloud.ticks + ticks + 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while cloud.ticks < target:
        if loop.time() > deadline:
            raise TimeoutError(f"billing ticked {cloud.ticks} times, not {target}")
        await asyncio.sleep(0.05)


async def wait_for_invoices(cloud: Cloud, count: int, seconds: float = 20) -> list[Envelope]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while ((invoices := await cloud.invoices()) and len(invoices) < count) or not invoices:
        if loop.time() > deadline:
            raise TimeoutError(f"billing issued {len(invoices)} invoices, not {count}")
        await asyncio.sleep(0.2)
    return invoices


async def test_a_closed_month_is_invoiced_once_across_restarts(cloud: Cloud) -> None:
    prices = PricesSet(
        currency="EUR",
        effective_from=START - timedelta(days=1),
        flavor_hour={"m1.small": "0.10"},
        volume_gb_month="0.04",
        egress_gb="0.05",
        public_ip_hour="0.005",
    )
    sample = UsageSampled(
        host="h1",
        period_seconds=60,
        cpu_time_ns=0,
        memory_kb=0,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=2_000_000_000,
    )
    await cloud.write(
        "gateway",
        (prices, "prices", day(1)),
        (InstanceRequested(name="vm", flavor=SMALL), "i-1", day(1)),
    )
    await cloud.write(
        "compute",
        (InstanceStarted(host="h1"), "i-1", day(2)),
        (sample, "i-1", day(2, 6)),
        (InstanceStopped(host="h1"), "i-1", day(2, 12)),
    )

    async with cloud.billing(snapshot=False) as runner:  # stops as a crash would
        [issued] = await wait_for_invoices(cloud, 1)
        await ticks_pass(cloud)  # several more ticks
        first_state = snapshot.snapshot(runner.state)
    invoice = issued.payload
    assert isinstance(invoice, InvoiceIssued)
    assert (invoice.tenant, invoice.period, invoice.currency) == ("t-1", PERIOD, "EUR")
    # 12 h x 0.10 + 2 GB x 0.05
    assert sorted((x.kind, x.quantity, x.amount) for x in invoice.lines) == [
        ("compute", "12.000000", "1.20"),
        ("egress", "2.000000000", "0.10"),
    ]
    assert invoice.total == "1.30"

    for keep_snapshot in (True, False):  # rebuilt from the log, then from its snapshot
        async with cloud.billing(snapshot=keep_snapshot) as runner:
            assert snapshot.snapshot(runner.state) == first_state
            await ticks_pass(cloud)  # several ticks of the rebuilt service
            assert snapshot.snapshot(runner.state) == first_state
    assert [e.event_id for e in await cloud.invoices()] == [issued.event_id]
