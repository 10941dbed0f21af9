"""Runs side effects beside the decide loop: serially per key, concurrently across keys.

A decision commits first (its events, its input offsets and, for an input's effects, their
journal records: `virga_runtime.journal`); only then are its effects handed to the
`EffectScheduler`, which runs each after the effects decided earlier on the same key (an
instance, a volume) and reports the outcome through `finished`. The decide lock is never
held while a handler runs, so a guest that takes a minute to stop holds neither the agent's
heartbeats nor the other instances of its host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from virga_runtime.service import EffectHandler, Emit

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Operation:
    """One effect to carry out, and what its outcome events derive their ids from."""

    effect: Any
    index: int
    """Its index among its cause's intents: outcome ids derive from (cause, index)."""
    cause_id: str | None
    """The input event that decided it; None for a tick's or readiness' effect."""
    correlation_id: str | None
    journal_key: bytes | None = None
    """Its record in the journal (None: not journaled), dropped with its outcome."""
    exclusive: bool = field(default=False, compare=False)
    """Run after every effect submitted before it, and before any submitted after it (the
    start-up reconciliation, which looks at the whole host)."""

    @property
    def key(self) -> str:
        return str(self.effect.key)


Finished = Callable[[Operation, Sequence[Emit]], None]
"""Called with an operation's outcome events when its handler returns."""


class EffectScheduler:
    """Chains each operation after the previous one of its key; tracks what is in flight.

    An operation is in flight from `submit` until `settled` (its outcome committed), so
    `wait_idle` tells when every decided effect has been carried out and recorded.
    """

    def __init__(self, handlers: Mapping[type[Any], EffectHandler], finished: Finished) -> None:
        self._handlers = handlers
        self._finished = finished
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._barrier: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.failure: BaseException | None = None
        """A handler's exception: a fault that should stop the service (it rebuilds and
        carries the operation out again, from its journal record)."""

    def check(self, effect: Any) -> None:
        """Raise LookupError for an effect no handler carries out (before it is committed)."""
        if type(effect) not in self._handlers:
            raise LookupError(f"no handler for effect {type(effect).__name__}")

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def submit(self, operation: Operation) -> None:
        self.check(operation.effect)
        if operation.exclusive:
            after = [*self._tails.values(), *([self._barrier] if self._barrier else [])]
        else:
            previous = self._tails.get(operation.key) or self._barrier
            after = [previous] if previous is not None else []
        task = asyncio.create_task(self._run(operation, after), name=f"effect:{operation.key}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if operation.exclusive:
            self._barrier = task
            self._tails.clear()
        else:
            self._tails[operation.key] = task
        self._in_flight += 1
        self._idle.clear()

    def settled(self, count: int = 1) -> None:
        """`count` operations' outcomes are committed."""
        self._in_flight -= count
        if self._in_flight <= 0:
            self._in_flight = 0
            self._idle.set()

    async def wait_idle(self) -> None:
        await self._idle.wait()

    async def _run(self, operation: Operation, after: list[asyncio.Task[None]]) -> None:
        if after:
            await asyncio.wait(after)
        effect = operation.effect
        try:
            emits = await self._handlers[type(effect)](effect)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("effect_failed", effect=type(effect).__name__, key=operation.key)
            if self.failure is None:
                self.failure = exc
            return
        finally:
            me = asyncio.current_task()
            if self._tails.get(operation.key) is me:
                del self._tails[operation.key]
            if self._barrier is me:
                self._barrier = None
        self._finished(operation, emits)

    async def cancel(self) -> None:
        """Abandon what runs (its journal record stays, so the next start carries it out)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
