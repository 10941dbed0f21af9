"""`replay`: a service's state as of an instant, folded by the service's own `evolve`."""

from __future__ import annotations

import gc
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog

from virga_audit.log import read_topics
from virga_eventlog import KafkaSettings, RawRecord, RecentIds, event_topic
from virga_eventlog.topics import agent_families, family_of
from virga_events import REGISTRY, Envelope, EventDecodeError, EventRegistry, decode
from virga_runtime import ServiceDefinition
from virga_runtime.folding import Folds
from virga_runtime.hostcheck import refusal

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
        from virga_compute.config import ComputeConfig
        from virga_compute.drivers.memory import MemoryComputeDriver
        from virga_compute.service import definition as compute

        return compute(ComputeConfig(host=host, namespace=namespace), MemoryComputeDriver())
    if service == "storage":
        from virga_storage.config import StorageConfig
        from virga_storage.drivers.memory import MemoryStorageDriver as Volumes
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


def _until(
    record: RawRecord, until: datetime, registry: EventRegistry, families: tuple[str, ...]
) -> Envelope | None:
    """The record's event if it occurred by `until` and its topic may hold it (an event in a
    host's topic about another host is dropped, as every consumer drops it)."""
    if record.value is None:
        return None
    try:
        envelope = decode(record.value, registry)
    except EventDecodeError:
        return None
    if refusal(record.topic, envelope, families) is not None:
        return None
    return envelope if envelope.occurred_at <= until else None


def _family(topic: str, families: tuple[str, ...]) -> str:
    """The topic a host's topic is read as (`<ns>.compute.h1` as `<ns>.compute`)."""
    member = family_of(topic, families)
    return member[0] if member is not None else topic


def _key(record: RawRecord, envelope: Envelope, families: tuple[str, ...]) -> str:
    """What an input is deduplicated by, as the runtime does (scoped by host in its topic)."""
    member = family_of(record.topic, families)
    return f"{envelope.event_id}@{member[1]}" if member and member[1] else envelope.event_id


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
    families = agent_families(settings.namespace)
    async for batch in read_topics(settings, definition.input_topics):
        for record in batch:
            envelope = _until(record, until, registry, families)
            if envelope is not None and not recent.seen(_key(record, envelope, families)):
                state = _fold(state, envelope, definition)
    async for batch in read_topics(settings, [definition.output_topic]):
        for record in batch:
            envelope = _until(record, until, registry, families)
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
    from virga_events.catalog.compute import HostRegistered

    hosts: set[str] = set()
    families = agent_families(settings.namespace)
    async for batch in read_topics(settings, [event_topic("compute", settings.namespace)]):
        for record in batch:
            envelope = _until(record, until, REGISTRY, families)
            if envelope is not None and isinstance(envelope.payload, HostRegistered):
                hosts.add(envelope.aggregate_id)
    return sorted(hosts)


async def replay_all(settings: KafkaSettings, until: datetime) -> dict[str, Any]:
    """Every service's state as of `until` (compute: one per registered host), by service.

    Each service folds as `replay_state` would (its inputs deduplicated, then its own topic),
    but the log is read twice in all rather than once per service: a first pass folds every
    record into each service that has its topic as an input, a second into the topic's owner.
    """
    hosts = await compute_hosts(settings, until)
    families = agent_families(settings.namespace)
    names = [s for s in REPLAYABLE if s != "compute"]
    definitions: dict[str, ServiceDefinition[Any]] = {
        name: service_definition(name, settings.namespace) for name in names
    }
    for host in hosts:
        definitions[f"compute@{host}"] = service_definition("compute", settings.namespace, host)
    states = {name: definition.initial_state() for name, definition in definitions.items()}
    readers: dict[str, list[str]] = {}
    owners: dict[str, list[str]] = {}
    for name, definition in definitions.items():
        for topic in definition.input_topics:
            readers.setdefault(topic, []).append(name)
        owners.setdefault(definition.output_topic, []).append(name)

    skipped = {name: _IgnoredTypes(definition) for name, definition in definitions.items()}

    async def fold_pass(folders: dict[str, list[str]], recent: RecentIds | None) -> None:
        async for batch in read_topics(settings, sorted(folders)):
            for record in batch:
                envelope = _until(record, until, REGISTRY, families)
                key = _key(record, envelope, families) if envelope is not None else ""
                if envelope is None or (recent is not None and recent.seen(key)):
                    continue
                kind = type(envelope.payload)
                for name in folders[_family(record.topic, families)]:
                    if kind in skipped[name]:
                        continue
                    states[name] = _fold(states[name], envelope, definitions[name])

    # As on a rebuild: the folds allocate millions of long-lived objects that the cyclic GC
    # would rescan again and again; it is off while folding (a replay makes no cycles to free).
    gc.disable()
    try:
        await fold_pass(readers, RecentIds())
        await fold_pass(owners, None)
    finally:
        gc.enable()
    found: dict[str, Any] = {
        name: _document(definitions[name].snapshot(states[name])) for name in names
    }
    found["compute"] = {
        host: _document(definitions[f"compute@{host}"].snapshot(states[f"compute@{host}"]))
        for host in hosts
    }
    return found


class _IgnoredTypes:
    """The event types a service's fold leaves alone, when its `evolve` is a `Folds` table
    (every service's but the gateway's, whose fold also keeps time for any event): those
    are not even handed to it."""

    def __init__(self, definition: ServiceDefinition[Any]) -> None:
        table = getattr(definition.evolve, "__self__", None)
        self._folded = table.event_types if isinstance(table, Folds) else None

    def __contains__(self, kind: type[Any]) -> bool:
        return self._folded is not None and kind not in self._folded


def _document(state: Any) -> Any:
    # The gateway's snapshot is already encoded JSON: embed it rather than quote it.
    return orjson.loads(state) if isinstance(state, str) else state
