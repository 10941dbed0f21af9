"""One fold style for every service: a table of what each event type does to the state.

A service's fold is a `Folds[S]`; each handler is registered for the one event type it folds
and receives the state, the envelope and the envelope's payload already typed:

    folds: Folds[SchedulerState] = Folds()

    @folds.on(HostDisabled)
    def _host_disabled(state: SchedulerState, envelope: Envelope, event: HostDisabled) -> None:
        state.disabled.add(envelope.aggregate_id)

    evolve = folds.evolve   # the `ServiceDefinition.evolve` of the service

Every other event type leaves the state alone. A handler validates before it changes
anything, so an event it refuses (by raising) leaves the state as it was. Pure: imports
nothing but the contract, so a service's `core` may use it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from virga_events import Envelope

S = TypeVar("S")
E = TypeVar("E")

FoldHandler = Callable[[S, Envelope[Any], E], None]
"""Folds one event of type E into the state S, in place."""


class Folds(Generic[S]):
    """The fold of one service: a handler per event type, dispatched on the payload's type."""

    def __init__(self) -> None:
        self._table: dict[type[Any], Callable[[S, Envelope[Any], Any], None]] = {}

    def on(self, event_type: type[E]) -> Callable[[FoldHandler[S, E]], FoldHandler[S, E]]:
        """Register the decorated function as the fold of `event_type` (once per type)."""

        def register(handler: FoldHandler[S, E]) -> FoldHandler[S, E]:
            if event_type in self._table:
                raise ValueError(f"{event_type.__name__} already has a fold")
            self._table[event_type] = handler
            return handler

        return register

    def add(self, event_type: type[E], handler: FoldHandler[S, E]) -> None:
        """The same as `on`, for a handler defined elsewhere."""
        self.on(event_type)(handler)

    def include(self, other: Folds[S]) -> None:
        """Take every fold of `other` (a part of the same service's fold kept in a module of
        its own); a type folded by both is refused as `on` refuses it."""
        for event_type, handler in other._table.items():
            self.add(event_type, handler)

    @property
    def event_types(self) -> frozenset[type[Any]]:
        """The event types this fold reads; every other type leaves the state alone."""
        return frozenset(self._table)

    def evolve(self, state: S, envelope: Envelope[Any]) -> S:
        """Fold one event into `state` (deterministic, no I/O) and return it."""
        handler = self._table.get(type(envelope.payload))
        if handler is not None:
            handler(state, envelope, envelope.payload)
        return state
