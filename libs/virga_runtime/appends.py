"""Appending events no input caused (a user's request, an agent's report): group commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from virga_events import Envelope
from virga_runtime.service import Emit, S
from virga_runtime.signals import SignalDecider


@dataclass
class PendingAppend:
    emits: Sequence[Emit]
    correlation_id: str | None
    done: asyncio.Future[list[Envelope]]


class Appender(SignalDecider[S]):
    """The part of `ServiceRunner` that appends out-of-band events in shared transactions."""

    _appends: asyncio.Queue[PendingAppend]

    async def append(
        self, emits: Sequence[Emit], *, correlation_id: str | None = None
    ) -> list[Envelope]:
        """Append events not caused by an input (a user request); returns them once committed.

        Concurrent callers share transactions (group commit); state includes the events when
        this returns, so the caller reads its own writes.
        """
        done: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        await self._appends.put(PendingAppend(emits, correlation_id, done))
        return await done

    async def _append_loop(self) -> None:
        while True:
            first = await self._appends.get()
            self._appends.put_nowait(first)
            async with self._lock:
                await self._drain_appends()

    async def _drain_appends(self) -> None:
        assert self._writer is not None
        pending: list[PendingAppend] = []
        while not self._appends.empty():
            pending.append(self._appends.get_nowait())
        if not pending:
            return
        try:
            async with self._writer.transaction() as txn:
                await self._carry_undecided(txn)
                results = []
                for request in pending:
                    envelopes = [
                        self._envelope(e, None, request.correlation_id) for e in request.emits
                    ]
                    results.append([await self._emit(txn, env) for env in envelopes])
            self._after_commit(txn, {})
            self._undecided = {}  # carried by that transaction
        except BaseException as exc:
            for request in pending:
                if not request.done.done():
                    request.done.set_exception(exc)
            raise
        for request, envelopes in zip(pending, results, strict=True):
            request.done.set_result(envelopes)
