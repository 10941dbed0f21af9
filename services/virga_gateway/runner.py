"""The gateway's runner: the common service runtime over the gateway's projection, with an
append path that stays honest when the event log is away.

A request's events are folded into the projection only once their transaction has committed,
so no read ever shows a write that did not happen. A transaction the log has not confirmed
within `commit_seconds` is in doubt: its requests fail with `LogUnavailable` (HTTP 503), and
the runner replaces its producer (the new one, with the same transactional id, fences the old
and makes the broker finish or abort its open transaction), then folds whatever of ours did
commit from the log itself. Until then `recovering` is set and every write is refused, so an
Idempotency-Key is always resolved against the log, never against a guess. A snapshot the log
has not confirmed in time, or refused, leaves the producer in doubt the same way: the service
goes on, and snapshots again at the next due time.

Closing never waits on an absent log: no final snapshot then, an in-doubt transaction is
abandoned (the next start folds whatever of it committed, as it folds the whole log), and the
producer and consumer are dropped once they have had `STOP_SECONDS` to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

from virga_eventlog import ChainHead, EventWriter, KafkaSettings, LogReader, Transaction
from virga_events import Envelope
from virga_gateway.logwatch import LogWatch
from virga_gateway.state import GatewayState
from virga_gateway.stream.hub import ChangeHub
from virga_runtime.appends import PendingAppend
from virga_runtime.rebuild import fold_own
from virga_runtime.runner import ServiceRunner
from virga_runtime.runner_config import RunnerConfig
from virga_runtime.service import ServiceDefinition

RETRY_START_SECONDS = 1.0
"""Pause between attempts to start a new producer while the log is away."""
STOP_SECONDS = 5.0
"""How long a discarded producer may take to stop."""


class LogUnavailable(Exception):
    """The event log did not confirm a write in time: it may still commit, or never."""


class GatewayRunner(ServiceRunner[GatewayState]):
    """`ServiceRunner` whose out-of-band appends fold after their commit, and survive the log's
    absence (see the module's docstring)."""

    def __init__(
        self,
        definition: ServiceDefinition[GatewayState],
        settings: KafkaSettings,
        config: RunnerConfig,
        *,
        commit_seconds: float = 5.0,
    ) -> None:
        self.changes = ChangeHub()
        """The open event streams (`GET /v1/events/stream`): fed every event folded live."""
        folds = definition.evolve

        def evolve(state: GatewayState, envelope: Envelope) -> GatewayState:
            state = folds(state, envelope)
            if self.ready.is_set():  # a rebuild's events are history, not news
                self.changes.publish(state, envelope)
            return state

        super().__init__(dataclasses.replace(definition, evolve=evolve), settings, config)
        self.commit_seconds = commit_seconds
        self.recovering = False
        """A transaction is in doubt: writes are refused until the log has been read back."""
        self.watch = LogWatch(settings, definition.output_topic, self.transactional_id)
        self._in_doubt: tuple[asyncio.Task[object], EventWriter, ChainHead] | None = None

    def log_reachable(self) -> bool:
        return not self.recovering and self.watch.reachable()

    async def _start(self) -> None:
        await super()._start()
        self.watch.contact()  # the rebuild has just read the log
        self._tasks.append(asyncio.create_task(self.watch.watch(), name="log-watch"))

    # -- appends ---------------------------------------------------------------------------

    async def _append_loop(self) -> None:
        while True:
            first = await self._appends.get()
            self._appends.put_nowait(first)
            async with self._lock:
                await self._drain_appends()
            if self._in_doubt is not None:
                await self._recover(*self._in_doubt)
                self._in_doubt = None

    def _doubt(self, work: asyncio.Task[object], writer: EventWriter, head: ChainHead) -> None:
        """`writer`'s transaction `work` is in doubt: refuse writes until it is settled."""
        self.recovering = True
        self._in_doubt = (work, writer, head)

    async def _drain_appends(self) -> None:
        pending: list[PendingAppend] = []
        while not self._appends.empty():
            pending.append(self._appends.get_nowait())
        if not pending:
            return
        writer = self._writer
        if self.recovering or writer is None:
            _fail(pending, LogUnavailable("the gateway is reconciling with the event log"))
            return
        head = writer.head
        work = asyncio.create_task(self._transact(writer, pending))
        await asyncio.wait({work}, timeout=self.commit_seconds)
        if work.done() and not work.cancelled() and work.exception() is None:
            txn, results = work.result()
            for envelopes in results:
                for envelope in envelopes:  # only now: the projection shows committed writes
                    self._fold(envelope)
                    self._tally["events_emitted"] += 1
            self._after_commit(txn, {})
            self.watch.contact()
            for request, envelopes in zip(pending, results, strict=True):
                request.done.set_result(envelopes)
            return
        # Not confirmed in time, or failed: in doubt until the log says what became of it.
        self.recovering = True
        error = LogUnavailable(
            f"the event log did not confirm the write in {self.commit_seconds} s"
        )
        failure = work.exception() if work.done() and not work.cancelled() else None
        self._log.warning("append_in_doubt", error=repr(failure))
        while not self._appends.empty():
            pending.append(self._appends.get_nowait())
        _fail(pending, error)
        self._doubt(work, writer, head)

    async def _transact(
        self, writer: EventWriter, pending: Sequence[PendingAppend]
    ) -> tuple[Transaction, list[list[Envelope]]]:
        topic = self.definition.output_topic
        async with writer.transaction() as txn:
            results = [
                [
                    await txn.append(topic, self._envelope(e, None, request.correlation_id))
                    for e in request.emits
                ]
                for request in pending
            ]
        return txn, results

    # -- recovery ---------------------------------------------------------------------------

    async def _recover(self, work: asyncio.Task[object], old: EventWriter, head: ChainHead) -> None:
        """Fence the old producer with a new one, then fold what of ours committed."""
        writer = await self._new_writer(head)  # waits for the log to come back
        # Writes stay refused (`recovering`); closing from here on stops the new producer.
        self._writer = writer
        await self._drop(old)
        while not work.done():
            work.cancel()
            await asyncio.wait({work}, timeout=1.0)
        if not work.cancelled():
            work.exception()  # retrieved: the requests were answered already
        async with self._lock:
            folded, writer.head = await self._read_back(head)
            self.recovering = False
        self.watch.contact()
        self._log.info("log_reconciled", events_folded=folded, head_seq=writer.head.seq)

    async def _new_writer(self, head: ChainHead) -> EventWriter:
        while True:
            writer = EventWriter(self.settings, transactional_id=self.transactional_id, head=head)
            try:
                await writer.start()
                return writer
            except Exception as exc:
                self._log.info("producer_start_failed", error=repr(exc))
                with contextlib.suppress(Exception):
                    await writer.discard(STOP_SECONDS)
                await asyncio.sleep(RETRY_START_SECONDS)

    async def _read_back(self, head: ChainHead) -> tuple[int, ChainHead]:
        """Fold our events that committed past `self._own` (those after `head` in our chain)."""
        topic = self.definition.output_topic
        reader = LogReader(self.settings, [topic], client_id=f"{self.transactional_id}-readback")
        await reader.start()
        folded = 0
        try:
            ends = await reader.end_offsets()
            registry, evolve = self.definition.registry, self.definition.evolve
            async for batch in reader.read_range(self._own, ends):
                self.state, applied, head = fold_own(
                    batch, registry, evolve, self.state, self.producer_name, head.seq, head
                )
                folded += applied
            self.events_applied += folded
            self._own.update(ends)
        finally:
            await reader.stop()
        return folded, head

    # -- snapshots and closing ----------------------------------------------------------------

    async def _snapshot(self) -> None:
        """Snapshot unless the log is away; one it does not confirm within `commit_seconds`,
        or refuses, is a warning that leaves the producer in doubt, never a failure."""
        writer = self._writer
        if writer is None or not self.log_reachable():  # never wait on an absent log
            return
        work: asyncio.Task[object] = asyncio.create_task(super()._snapshot())
        await asyncio.wait({work}, timeout=self.commit_seconds)
        if work.done() and not work.cancelled() and work.exception() is None:
            return
        error = work.exception() if work.done() and not work.cancelled() else None
        self._log.warning("snapshot_failed", error=repr(error), seconds=self.commit_seconds)
        self._snapshot_at = time.monotonic()  # again at the next due time
        self._doubt(work, writer, writer.head)
        # Wake the append loop, which settles the doubt (with a request of nothing).
        done: asyncio.Future[list[Envelope]] = asyncio.get_running_loop().create_future()
        done.add_done_callback(_retrieved)
        self._appends.put_nowait(PendingAppend((), None, done))

    async def close(self, *, snapshot: bool = True) -> None:
        try:
            # No final snapshot while the log is away: the next start rebuilds from the log.
            await super().close(snapshot=snapshot and self.log_reachable())
        finally:
            if self._in_doubt is not None:  # abandoned: the next start folds what committed
                work, old, _ = self._in_doubt
                self._in_doubt = None
                await self._drop(old)
                work.cancel()
                await asyncio.wait({work}, timeout=1.0)
                if work.done():
                    _retrieved(work)
            await self.watch.close()

    async def _drop(self, writer: EventWriter) -> None:
        """Stop a producer that may be fenced or stuck, waiting on it `STOP_SECONDS` at most."""
        try:
            await writer.discard(STOP_SECONDS)
        except Exception as exc:  # fenced, or still stuck: it is discarded either way
            self._log.info("old_producer_discarded", error=repr(exc))


def _retrieved(done: asyncio.Future[Any]) -> None:
    if not done.cancelled():
        done.exception()


def _fail(pending: Sequence[PendingAppend], error: Exception) -> None:
    for request in pending:
        if not request.done.done():
            request.done.set_exception(error)
