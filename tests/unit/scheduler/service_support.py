"""Builders for the scheduler service's unit tests: events, and a runtime stand-in that folds
each decision back into the state the way ``ServiceRunner`` does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.api import (
    InstanceDeletionRequested,
    InstanceRequested,
    ServerGroupCreated,
)
from virga_events.catalog.compute import (
    HostHeartbeat,
    HostRegistered,
    InstanceDeleted,
    InstanceFailed,
)
from virga_events.catalog.scheduler import InstanceScheduled, InstanceSchedulingFailed
from virga_runtime import Emit, Intent
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core.decide import decide, tick
from virga_scheduler.core.fold import evolve
from virga_scheduler.core.model import SchedulerState

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SMALL = Flavor(name="m1.small", vcpus=2, ram_mb=2048, disk_gb=20)
TENANT = "t-1"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(
    payload: Event,
    aggregate_id: str,
    tenant_id: str | None = None,
    *,
    seconds: float = 0,
    producer: str = "test",
) -> Envelope:
    return new_event(
        payload,
        aggregate_id=aggregate_id,
        tenant_id=tenant_id,
        producer=producer,
        occurred_at=at(seconds),
    )


def registered(
    name: str,
    *,
    rack: str = "r1",
    zone: str = "az1",
    vcpus: int = 4,
    ram_mb: int = 8192,
    disk_gb: int = 200,
    traits: tuple[str, ...] = (),
    seconds: float = 0,
    migration_uri: str | None = None,
) -> Envelope:
    payload = HostRegistered(
        rack=rack,
        zone=zone,
        vcpus=vcpus,
        ram_mb=ram_mb,
        disk_gb=disk_gb,
        traits=traits,
        migration_uri=migration_uri,
    )
    return event(payload, name, seconds=seconds, producer=f"compute@{name}")


def heartbeat(name: str, seconds: float) -> Envelope:
    return event(HostHeartbeat(running=0), name, seconds=seconds, producer=f"compute@{name}")


def requested(
    instance_id: str,
    *,
    flavor: Flavor = SMALL,
    group: str | None = None,
    zone: str | None = None,
    traits: tuple[str, ...] = (),
    seconds: float = 0,
) -> Envelope:
    payload = InstanceRequested(
        name=f"vm-{instance_id}",
        flavor=flavor,
        image="debian-12",
        network="net-1",
        server_group=group,
        availability_zone=zone,
        required_traits=traits,
    )
    return event(payload, instance_id, TENANT, seconds=seconds, producer="gateway")


def group_created(group_id: str, policy: str = "anti-affinity", scope: str = "rack") -> Envelope:
    payload = ServerGroupCreated(name=group_id, policy=policy, scope=scope)  # type: ignore[arg-type]
    return event(payload, group_id, TENANT, producer="gateway")


def deletion_requested(instance_id: str) -> Envelope:
    return event(InstanceDeletionRequested(), instance_id, TENANT, producer="gateway")


def failed(
    instance_id: str, host: str, phase: str = "spawn", reason: str = "disk full"
) -> Envelope:
    payload = InstanceFailed(host=host, phase=phase, reason=reason)  # type: ignore[arg-type]
    return event(payload, instance_id, TENANT, producer=f"compute@{host}")


def deleted(instance_id: str, host: str) -> Envelope:
    return event(InstanceDeleted(host=host), instance_id, TENANT, producer=f"compute@{host}")


@dataclass
class Scheduler:
    """evolve, decide, and each emitted event folded at once: what the runtime does live.

    ``inputs`` and ``outputs`` keep the log as written, for rebuild tests.
    """

    config: SchedulerConfig = field(default_factory=SchedulerConfig)
    state: SchedulerState = field(default_factory=SchedulerState)
    inputs: list[Envelope] = field(default_factory=list)
    outputs: list[Envelope] = field(default_factory=list)

    def feed(self, *envelopes: Envelope) -> list[Event]:
        """Decide on each input in turn; returns every payload emitted."""
        emitted: list[Event] = []
        for envelope in envelopes:
            self.inputs.append(envelope)
            self.state = evolve(self.state, envelope)
            emitted += self._apply(decide(self.config, self.state, envelope), envelope)
        return emitted

    def tick(self, seconds: float) -> list[Event]:
        return self._apply(tick(self.config, self.state, at(seconds)), None)

    def _apply(self, intents: Sequence[Intent], cause: Envelope | None) -> list[Event]:
        out: list[Event] = []
        for intent in intents:
            assert isinstance(intent, Emit)
            envelope = new_event(
                intent.payload,
                aggregate_id=intent.aggregate_id,
                tenant_id=intent.tenant_id,
                producer="scheduler",
                causation=cause,
                occurred_at=cause.occurred_at if cause is not None else None,
            )
            self.outputs.append(envelope)
            self.state = evolve(self.state, envelope)
            out.append(intent.payload)
        return out

    def outputs_payloads(self) -> list[Event]:
        return [envelope.payload for envelope in self.outputs]

    def host_of(self, instance_id: str) -> str | None:
        claim = self.state.claims.get(instance_id)
        return None if claim is None else claim.host


T = TypeVar("T")


def only(events: Sequence[object], kind: type[T]) -> T:
    """The one event of ``kind`` among ``events``."""
    found = [e for e in events if isinstance(e, kind)]
    assert len(found) == 1, events
    return found[0]


def scheduled_hosts(events: Sequence[object]) -> list[str]:
    return [e.host for e in events if isinstance(e, InstanceScheduled)]


def refusals(events: Sequence[object]) -> list[InstanceSchedulingFailed]:
    return [e for e in events if isinstance(e, InstanceSchedulingFailed)]
