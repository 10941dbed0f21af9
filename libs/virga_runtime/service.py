"""What a service is: its topics, its pure fold and decisions, and its side-effect handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from virga_events import REGISTRY, Envelope, Event, EventRegistry

S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Emit:
    """A decision to append one event to the service's own topic."""

    payload: Event
    """The event body."""
    aggregate_id: str
    """What the event is about; the record key, so one aggregate stays in one partition."""
    tenant_id: str | None
    """Owning tenant, or None for infrastructure facts."""
    occurred_at: datetime | None = None
    """Event time; None means when it is appended. The gateway sets it to the moment it
    accepted the request, so a response recorded with the events can show it."""


class Effect(Protocol):
    """A side effect `decide` asks for (start a domain, clone a volume...).

    Effects with the same `key` run one after another, in order; different keys may run
    concurrently. A handler returns the events that record the outcome, failures included:
    it raises only for faults that should stop the service (it will rebuild and retry).
    """

    @property
    def key(self) -> str: ...


Intent = Emit | Effect
EffectHandler = Callable[[Any], Awaitable[Sequence[Emit]]]


@dataclass(frozen=True)
class ServiceDefinition(Generic[S]):
    """Everything the runtime needs to run a service; the pure parts import no I/O."""

    name: str
    """Service name: `scheduler`, `compute`..."""
    input_topics: tuple[str, ...]
    """Topics whose events the service decides on (never its own topic)."""
    output_topic: str
    """The one topic this service writes."""
    initial_state: Callable[[], S]
    """State before the first event."""
    evolve: Callable[[S, Envelope], S]
    """The fold: deterministic, no I/O. May mutate and return `state`; must raise before
    changing anything if it rejects an event."""
    snapshot: Callable[[S], Any]
    """State to a JSON-able value (orjson types)."""
    restore: Callable[[Any], S]
    """The inverse of `snapshot`."""
    state_version: int = 1
    """Version of the `snapshot` shape. Raise it when a release changes the shape in a way
    `restore` cannot read: snapshots of another version are then ignored and the state is
    rebuilt from the log, as is any snapshot `restore` fails on."""
    decide: Callable[[S, Envelope], Sequence[Intent]] | None = None
    """Pure: what to do about a new input event, given the state that already includes it.
    None for a pure projection (the gateway): its inputs are folded without transactions.
    An input that decides nothing has its offset committed with the next transaction; after a
    crash it may be decided again, against the same state, so it must decide nothing again."""
    effects: Mapping[type[Any], EffectHandler] = field(default_factory=dict)
    """Handler per effect type, built by the service's composition root with real drivers."""
    tick: Callable[[S, datetime], Sequence[Intent]] | None = None
    """Pure: what time alone makes happen (heartbeats, timeouts); called every tick_seconds."""
    tick_seconds: float = 5.0
    on_ready: Callable[[S], Sequence[Intent]] | None = None
    """Pure: what to do once, each time the service has caught up (register, reconcile)."""
    signals: Callable[[], AsyncIterator[Any]] | None = None
    """What the world outside the log reports (a hypervisor's lifecycle events): iterated
    once the service is ready, each one decided by `on_signal` in its own transaction, as
    ticks are. The iterator lives as long as the service; its failure stops the service."""
    on_signal: Callable[[S, Any], Sequence[Intent]] | None = None
    """Pure: what to do about one signal, given the state."""
    registry: EventRegistry = REGISTRY
    """Event types this service can decode."""
    placed_on: Callable[[S, str], str | None] | None = None
    """The host the state places an instance on (None: none known). An agent's event about
    an instance placed on another host is refused (`virga_runtime.hostcheck`)."""
