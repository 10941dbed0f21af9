"""A scripted month of one tenant's activity on a real broker, with a gateway and a billing
service whose clock follows the script (so March is still open while March is being played).

The month is March 2026 (31 days). Prices are set through the API; every other fact is
written with the event time the script gives it, one writer per producer, as the services
would write them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from tests.integration.gateway.harness import Gateway
from tests.support.kafka import serving

from virga_billing.config import BillingConfig
from virga_billing.core.decide import tick
from virga_billing.service import definition
from virga_eventlog import EventWriter, KafkaSettings, ensure_topics, event_topic, virga_topics
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import (
    InstanceDeleted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted, VolumeExtended
from virga_rating.state import BillingState
from virga_runtime import RunnerConfig, ServiceRunner

PERIOD = "2026-03"
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)
MEDIUM = Flavor(name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40)


def march(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=UTC)


PRICES_BEFORE = {
    "currency": "EUR",
    "effective_from": "2026-02-01T00:00:00Z",
    "flavor_hour": {"m1.small": "0.10", "m1.medium": "0.20"},
    "volume_gb_month": "0.04",
    "egress_gb": "0.05",
    "public_ip_hour": "0.005",
}
PRICES_FROM_16TH = {
    "currency": "EUR",
    "effective_from": "2026-03-16T00:00:00Z",
    "flavor_hour": {"m1.small": "0.12", "m1.medium": "0.25"},
    "volume_gb_month": "0.05",
    "egress_gb": "0.08",
    "public_ip_hour": "0.006",
}


def sample(tx_bytes: int) -> UsageSampled:
    return UsageSampled(
        host="h1",
        period_seconds=60,
        cpu_time_ns=0,
        memory_kb=0,
        disk_read_bytes=0,
        disk_write_bytes=0,
        net_rx_bytes=0,
        net_tx_bytes=tx_bytes,
    )


def placed(name: str, flavor: Flavor) -> InstanceScheduled:
    return InstanceScheduled(host="h1", rack="r1", zone="z1", attempt=1, name=name, flavor=flavor)


Script = list[tuple[str, Event, str, datetime]]
"""(producer, fact, aggregate id, event time)."""

FIRST_HALF: Script = [
    ("scheduler", placed("a", SMALL), "i-a", march(1)),
    ("compute@h1", InstanceStarted(host="h1"), "i-a", march(2)),
    ("compute@h1", sample(1_500_000_000), "i-a", march(3)),
    ("compute@h1", sample(2_500_000_000), "i-a", march(4)),
    ("storage", VolumeCreated(name="data", size_gb=10), "v-1", march(5)),
    ("compute@h1", InstanceStopped(host="h1"), "i-a", march(5, 12)),
    ("compute@h1", InstanceStarted(host="h1"), "i-a", march(10)),
]  # fmt: skip
"""Played while billing runs."""

SECOND_HALF: Script = [
    ("compute@h1", sample(500_000_000), "i-a", march(12)),  # counters restarted with the domain
    ("scheduler", placed("b", MEDIUM), "i-b", march(14)),
    ("compute@h1", InstanceStarted(host="h1"), "i-b", march(14, 12)),
    ("storage", VolumeExtended(size_gb=30), "v-1", march(15)),
    ("compute@h1", sample(1_750_000_000), "i-a", march(18)),
    ("compute@h1", InstanceDeleted(host="h1"), "i-a", march(20, 6)),
    ("storage", VolumeDeleted(), "v-1", march(25)),
]  # fmt: skip
"""Played while billing is down (the price change is set then too)."""

EXPECTED_LINES = sorted(
    [
        # i-a: 2nd 00:00 to 5th 12:00 (84 h), 10th to 16th (144 h) at 0.10: 228 h
        ("i-a", "compute", "228.000000", "hour", "0.10", "22.80"),
        # 16th 00:00 to 20th 06:00: 102 h at 0.12
        ("i-a", "compute", "102.000000", "hour", "0.12", "12.24"),
        # i-b: 14th 12:00 to 16th (36 h) at 0.20, then to the month's end (16 days) at 0.25
        ("i-b", "compute", "36.000000", "hour", "0.20", "7.20"),
        ("i-b", "compute", "384.000000", "hour", "0.25", "96.00"),
        # egress: 1.5 + 1.0 GB before the restart, 0.5 GB after it (first sample) at 0.05
        ("i-a", "egress", "3.000000000", "GB", "0.05", "0.15"),
        # 1.75 - 0.5 GB on the 18th at 0.08
        ("i-a", "egress", "1.250000000", "GB", "0.08", "0.10"),
        # v-1: 10 GB x 10 days + 30 GB x 1 day before the 16th = 130/31 GB-month x 0.04
        ("v-1", "volume", "4.193548", "GB-month", "0.04", "0.17"),
        # 30 GB x 9 days (16th to 25th) = 270/31 GB-month x 0.05 = 0.4354...
        ("v-1", "volume", "8.709677", "GB-month", "0.05", "0.44"),
    ]
)
EXPECTED_TOTAL = "139.10"


class Clock:
    """Billing's idea of now: the script moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclasses.dataclass
class Month:
    """One namespace: a gateway, writers for the other services' facts, a billing service."""

    bootstrap: str
    settings: KafkaSettings
    gateway: Gateway
    tenant_id: str
    tenant_token: str
    clock: Clock
    writers: dict[str, EventWriter] = dataclasses.field(default_factory=dict)

    @property
    def config(self) -> BillingConfig:
        return BillingConfig(
            namespace=self.settings.namespace, grace_seconds=3600, tick_seconds=0.2
        )

    async def play(self, script: Script) -> list[Envelope]:
        written = []
        for producer, payload, aggregate_id, when in script:
            written.append(await self.write(producer, payload, aggregate_id, when))
        return written

    async def write(
        self, producer: str, payload: Event, aggregate_id: str, when: datetime
    ) -> Envelope:
        service = producer.split("@")[0]
        writer = self.writers.get(producer)
        if writer is None:
            writer = self.writers[producer] = EventWriter(
                self.settings, transactional_id=f"{self.settings.namespace}-{producer}"
            )
            await writer.start()
        envelope = new_event(
            payload,
            aggregate_id=aggregate_id,
            tenant_id=self.tenant_id,
            producer=producer,
            occurred_at=when,
        )
        async with writer.transaction() as txn:
            return await txn.append(event_topic(service, self.settings.namespace), envelope)

    @asynccontextmanager
    async def billing(self, *, snapshot: bool) -> AsyncIterator[ServiceRunner[BillingState]]:
        """The billing service, its ticks seeing the script's clock instead of the wall's."""
        config = self.config
        clock = self.clock
        service = dataclasses.replace(
            definition(config), tick=lambda state, now: tick(config, state, clock())
        )
        runner = ServiceRunner(service, self.settings, RunnerConfig())
        async with serving(runner, snapshot=snapshot):
            yield runner

    async def put_prices(self, prices: Mapping[str, object]) -> None:
        reply = await self.gateway.call("PUT", "/v1/prices", json=prices)
        assert reply.status == 200, reply.body

    async def close(self) -> None:
        for writer in self.writers.values():
            await writer.stop()
        await self.gateway.close()


@asynccontextmanager
async def scripted_month(bootstrap: str) -> AsyncIterator[Month]:
    namespace = f"month{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
    await ensure_topics(settings, virga_topics(partitions=3, namespace=namespace))
    gateway = await Gateway.create(bootstrap, namespace=namespace)
    tenant_id, token = await gateway.tenant("acme")
    month = Month(bootstrap, settings, gateway, tenant_id, token, Clock(march(1)))
    try:
        yield month
    finally:
        await month.close()


async def eventually(
    probe: Callable[[], object], seconds: float = 30, what: str = "condition"
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not probe():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not reached in {seconds} s")
        await asyncio.sleep(0.1)
