"""`replay`: a service's state as of an instant, folded by the service's own `evolve`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog

from virga_audit.log import read_topics
from virga_eventlog import KafkaSettings, RecentIds, event_topic
from virga_events import Envelope, EventDecodeError, EventRegistry, decode
from virga_runtime import ServiceDefinition

log = structlog.get_logger(__name__)

S = TypeVar("S")

REPLAYABLE = ("gateway", "scheduler", "compute", "storage", "network", "billing")


class UnknownService(ValueError):
    """The service cannot be replayed (or needs a host it was not given)."""


def service_definition(
    service: str, namespace: str, host: str | None = None
) -> ServiceDefinition[Any]:
    """The service's definition as its composition root builds it, minus real effects: a
    replay only folds, so the compute agent and storage get their in-memory drivers."""
    # Imported here: each service pulls in its whole core, and only one is ever wanted.
    if service == "gateway":
        from virga_gateway.config import GatewayConfig
        from virga_gateway.service import definition as gateway

        # Secrets only matter to on_ready and requests, never to the fold.
        return gateway(GatewayConfig(admin_token="", token_secret=b""), namespace)
    if service == "scheduler":
        from virga_scheduler.config import SchedulerConfig
        from virga_scheduler.service import definition as scheduler

        return scheduler(SchedulerConfig(namespace=namespace))
    if service == "compute":
        if not host:
            raise UnknownService("replaying a compute agent needs its host")
        from virga_compute.config import AgentConfig
        from virga_compute.memory_driver import MemoryDriver
        from virga_compute.service import definition as compute

        return compute(AgentConfig(host=host, namespace=namespace), MemoryDriver())
    if service == "storage":
        from virga_storage.config import StorageConfig
        from virga_storage.memory_driver import MemoryDriver as Volumes
        from virga_storage.service import definition as storage

        return storage(StorageConfig(namespace=namespace), Volumes())
    if service == "network":
        from virga_network.config import NetworkConfig
        from virga_network.service import definition as network

        return network(NetworkConfig(namespace=namespace))
    if service == "billing":
        from virga_billing.config import BillingConfig
        from virga_billing.service import definition as billing

        return billing(BillingConfig(namespace=namespace))
    raise UnknownService(f"cannot replay {service!r}: choose one of {', '.join(REPLAYABLE)}")


def _fold(
    state: S,
    envelope: Envelope,
    definition: ServiceDefinition[S],
) -> S:
    try:
        return definition.evolve(state, envelope)
    except Exception as exc:  # refused live too, and dead-lettered then: skipped as on rebuild
        log.warning("event_refused_on_replay", event_id=envelope.event_id, error=str(exc))
        return state


def _until(value: bytes | None, until: datetime, registry: EventRegistry) -> Envelope | None:
    if value is None:
        return None
    try:
        envelope = decode(value, registry)
    except EventDecodeError:
        return None
    return envelope if envelope.occurred_at <= until else None


async def replay_state(
    settings: KafkaSettings, definition: ServiceDefinition[S], until: datetime
) -> S:
    """Fold the events that occurred at or before `until` in the runtime's rebuild order
    (`virga_runtime.rebuild`): the inputs, deduplicated by event_id, then the own topic."""
    if until.tzinfo is None:
        raise ValueError("until must be timezone-aware")
    registry = definition.registry
    state = definition.initial_state()
    recent = RecentIds()
    async for batch in read_topics(settings, definition.input_topics):
        for record in batch:
            envelope = _until(record.value, until, registry)
            if envelope is not None and not recent.seen(envelope.event_id):
                state = _fold(state, envelope, definition)
    async for batch in read_topics(settings, [definition.output_topic]):
        for record in batch:
            envelope = _until(record.value, until, registry)
            if envelope is not None:
                state = _fold(state, envelope, definition)
    return state


async def replay(
    settings: KafkaSettings, service: str, until: datetime, host: str | None = None
) -> Any:
    """`service`'s state as of `until`, as its own `snapshot` function renders it."""
    definition = service_definition(service, settings.namespace, host)
    return definition.snapshot(await replay_state(settings, definition, until))


async def compute_hosts(settings: KafkaSettings, until: datetime) -> list[str]:
    """Hosts whose compute agent registered at or before `until`."""
    from virga_events import REGISTRY
    from virga_events.catalog.compute import HostRegistered

    hosts: set[str] = set()
    async for batch in read_topics(settings, [event_topic("compute", settings.namespace)]):
        for record in batch:
            envelope = _until(record.value, until, REGISTRY)
            if envelope is not None and isinstance(envelope.payload, HostRegistered):
                hosts.add(envelope.aggregate_id)
    return sorted(hosts)


async def replay_all(settings: KafkaSettings, until: datetime) -> dict[str, Any]:
    """Every service's state as of `until` (compute: one per registered host), by service.

    The services are replayed concurrently: each waits on the broker much of the time.
    """
    hosts = await compute_hosts(settings, until)
    services = [s for s in REPLAYABLE if s != "compute"]
    states = await asyncio.gather(
        *(replay(settings, service, until) for service in services),
        *(replay(settings, "compute", until, host) for host in hosts),
    )
    found: dict[str, Any] = {
        s: _document(state) for s, state in zip(services, states, strict=False)
    }
    found["compute"] = {
        host: _document(state) for host, state in zip(hosts, states[len(services) :], strict=True)
    }
    return found


def _document(state: Any) -> Any:
    # The gateway's snapshot is already encoded JSON: embed it rather than quote it.
    return orjson.loads(state) if isinstance(state, str) else state
