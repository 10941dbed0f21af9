"""Envelopes for unit tests of the gateway's fold, with event times under the test's control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor, api, scheduler
from virga_gateway.state import GatewayState, evolve

T0 = datetime(2026, 1, 1, tzinfo=UTC)
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def envelope(
    payload: Event,
    aggregate: str,
    *,
    tenant: str | None = None,
    producer: str = "gateway",
    seconds: float = 0,
) -> Envelope:
    return new_event(
        payload,
        aggregate_id=aggregate,
        tenant_id=tenant,
        producer=producer,
        occurred_at=at(seconds),
    )


def requested(instance: str, tenant: str = "t1", seconds: float = 0, **fields: object) -> Envelope:
    event = api.InstanceRequested(name=f"vm-{instance}", flavor=SMALL, **fields)  # type: ignore[arg-type]
    return envelope(event, instance, tenant=tenant, seconds=seconds)


def scheduled(instance: str, host: str = "h1", seconds: float = 1) -> Envelope:
    event = scheduler.InstanceScheduled(
        host=host, rack="r1", zone="az1", attempt=1, name=f"vm-{instance}", flavor=SMALL
    )
    return envelope(event, instance, producer="scheduler", seconds=seconds)


def fold(*envelopes: Envelope, state: GatewayState | None = None) -> GatewayState:
    current = state if state is not None else GatewayState()
    for each in envelopes:
        current = evolve(current, each)
    return current
