"""Deciding on input and ticks: evolve, decide, dead letters, offsets, one transaction; effects
after it, beside the loop, their outcomes in transactions of their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import msgspec
import structlog
from aiokafka import TopicPartition

from virga_eventlog import (
    Positions,
    RawRecord,
    Transaction,
    dead_letter_topic,
    dead_letter_value,
    partition_of,
)
from virga_events import Envelope, EventDecodeError, decode, derived_event_id, new_event
from virga_runtime.effects import EffectScheduler, Operation
from virga_runtime.hostcheck import ForeignHostEvent
from virga_runtime.instance import ServiceInstance
from virga_runtime.journal import encode_operation, journal_key, pending_operations
from virga_runtime.service import Emit, Intent, S


class Decider(ServiceInstance[S]):
    """The part of `ServiceRunner` that decides: on each batch of live input records, and on
    what time or readiness alone makes happen (`_act`).

    For each input: evolve, then decide; the emitted events are folded at once (so the next
    decision of the batch sees them) and appended with the batch's input offsets, and the
    journal records of its effects, in one Kafka transaction. The effects run once that
    commits, outside the decide lock (`virga_runtime.effects`); each outcome is appended in a
    short transaction of its own. A service that never decides only folds.
    """

    ready: asyncio.Event
    """Set once caught up with the log (by the runner)."""
    _tasks: list[asyncio.Task[None]]
    _operations: EffectScheduler
    _outcomes: asyncio.Queue[tuple[Operation, Sequence[Emit]]]

    def _init_effects(self) -> None:
        self._outcomes = asyncio.Queue()
        self._operations = EffectScheduler(
            self.definition.effects, lambda op, emits: self._outcomes.put_nowait((op, emits))
        )

    # -- live processing ----------------------------------------------------------------------

    async def _process(self, records: list[RawRecord]) -> None:
        if self.definition.decide is None:
            await self._project(records)
            return
        assert self._writer is not None
        consumed: Positions = {}
        operations: list[Operation] = []
        async with self._writer.transaction() as txn:
            for record in records:
                if self._is_own(record.topic):
                    if (reason := self._apply_peer(record)) is not None:
                        await self._dead_letter(txn, record, reason)
                    continue
                consumed[partition_of(record)] = record.offset + 1
                envelope = await self._decode_or_dead_letter(txn, record)
                if envelope is None or self.recent.seen(self._dedupe_key(record.topic, envelope)):
                    if envelope is not None:
                        self._tally["duplicates"] += 1
                    continue
                with structlog.contextvars.bound_contextvars(
                    correlation_id=envelope.correlation_id,
                    event_id=envelope.event_id,
                    event_type=envelope.type,
                ):
                    intents = await self._evolve_and_decide(txn, record, envelope)
                    for index, intent in enumerate(intents):
                        if isinstance(intent, Emit):
                            await self._emit(txn, self._envelope(intent, envelope, None, index))
                        else:
                            operations.append(await self._journal(txn, envelope, index, intent))
                self._tally["events_handled"] += 1
            committed = await self._commit_inputs(txn, consumed)
        if committed:
            self._undecided = {}
        self._after_commit(txn, consumed)
        for operation in operations:
            self._operations.submit(operation)

    async def _journal(
        self, txn: Transaction, cause: Envelope, index: int, effect: object
    ) -> Operation:
        """The operation of an input's effect, with its journal record written in `txn`."""
        self._operations.check(effect)
        key = journal_key(self.producer_name, cause.event_id, index)
        operation = Operation(effect, index, cause.event_id, cause.correlation_id, key)
        await txn.append_raw(self.snapshot_topic, key, encode_operation(operation))
        return operation

    # -- outcomes of effects --------------------------------------------------------------------

    def _resume_operations(self, snapshot_records: dict[bytes, bytes]) -> None:
        """Carry out again the effects decided before a crash whose outcome never committed
        (the journal's records), before anything decided from now on reaches their keys."""
        records = pending_operations(snapshot_records, self.producer_name, self.definition.effects)
        for operation in records:
            self._log.warning(
                "operation_resumed", effect=type(operation.effect).__name__, key=operation.key
            )
            self._operations.submit(operation)

    async def _outcome_loop(self) -> None:
        while True:
            first = await self._outcomes.get()
            self._outcomes.put_nowait(first)
            async with self._lock:
                await self._commit_outcomes()

    async def _commit_outcomes(self) -> None:
        """Append the outcomes of every finished effect, and drop their journal records, in
        one transaction (group commit: a host's effects often finish together)."""
        assert self._writer is not None
        finished: list[tuple[Operation, Sequence[Emit]]] = []
        while not self._outcomes.empty():
            finished.append(self._outcomes.get_nowait())
        if not finished:
            return
        async with self._writer.transaction() as txn:
            await self._carry_undecided(txn)
            for operation, emits in finished:
                for j, emit in enumerate(emits):
                    await self._emit(txn, self._outcome_envelope(operation, j, emit))
                if operation.journal_key is not None:
                    await txn.append_raw(self.snapshot_topic, operation.journal_key, None)
        self._after_commit(txn, {})
        self._undecided = {}  # carried by that transaction
        self._operations.settled(len(finished))

    def _outcome_envelope(self, operation: Operation, j: int, emit: Emit) -> Envelope:
        envelope = self._envelope(emit, None, operation.correlation_id)
        if operation.cause_id is None:
            return envelope
        index = f"effect-{operation.index}-{j}"
        return msgspec.structs.replace(
            envelope,
            event_id=derived_event_id(operation.cause_id, self.producer_name, index),
            causation_id=operation.cause_id,
        )

    async def _commit_inputs(self, txn: Transaction, consumed: Positions) -> bool:
        """Commit `consumed` with `txn`'s records, or hold it back if `txn` has none.

        Most inputs decide nothing (another host's placement, a peer's report): re-deciding one
        after a crash yields nothing again, so it needs no transaction of its own, which costs
        the broker four requests and commit markers. Its offset rides on the next transaction
        that writes, or on an offsets-only one once the inputs go quiet (and in snapshots).
        """
        self._undecided.update(consumed)
        if txn.empty:
            return False
        await txn.commit_offsets(self._undecided, self.group_id)
        return True

    async def _carry_undecided(self, txn: Transaction) -> None:
        """Commit held-back input offsets with a transaction written for another reason.

        Invariant: no event of ours commits before the inputs consumed ahead of it, so an input
        re-decided after a crash meets the same state it met the first time.
        """
        if self._undecided:
            await txn.commit_offsets(self._undecided, self.group_id)

    async def _commit_undecided(self) -> None:
        if not self._undecided:
            return
        assert self._writer is not None
        async with self._writer.transaction() as txn:
            await txn.commit_offsets(self._undecided, self.group_id)
        self._undecided = {}

    async def _project(self, records: list[RawRecord]) -> None:
        """Fold inputs of a service that never decides: no transaction, no offsets to commit.

        Positions live in memory and in snapshots; after a crash the inputs since the last
        snapshot are folded again, which a projection cannot tell from the first time. Only
        records to dead-letter need a transaction.
        """
        refused: list[tuple[RawRecord, str]] = []
        for record in records:
            if self._is_own(record.topic):
                if (reason := self._apply_peer(record)) is not None:
                    refused.append((record, reason))
                continue
            self._inputs[partition_of(record)] = record.offset + 1
            try:
                envelope = self._decode(record)
            except EventDecodeError as exc:
                refused.append((record, exc.reason))
                continue
            if self.recent.seen(self._dedupe_key(record.topic, envelope)):
                self._tally["duplicates"] += 1
                continue
            try:
                self.state = self.definition.evolve(self.state, envelope)
            except Exception as exc:
                self._log.exception("event_refused", event_id=envelope.event_id, error=str(exc))
                refused.append((record, f"{type(exc).__name__} in evolve: {exc}"))
                continue
            self._applied()
            self._tally["events_handled"] += 1
        if refused:
            assert self._writer is not None
            async with self._writer.transaction() as txn:
                for record, reason in refused:
                    await self._dead_letter(txn, record, reason)
            self._after_commit(txn, {})
        else:
            self._flush_tally()

    async def _evolve_and_decide(
        self, txn: Transaction, record: RawRecord, envelope: Envelope
    ) -> Sequence[Intent]:
        try:
            self.state = self.definition.evolve(self.state, envelope)
            self._applied()
            decide = self.definition.decide
            return decide(self.state, envelope) if decide is not None else ()
        except Exception as exc:  # a bug or an event the fold refuses: never stop the service
            self._log.exception("event_refused", error=str(exc))
            await self._dead_letter(txn, record, f"{type(exc).__name__} in evolve/decide: {exc}")
            return ()

    async def _decode_or_dead_letter(self, txn: Transaction, record: RawRecord) -> Envelope | None:
        try:
            return self._decode(record)
        except EventDecodeError as exc:
            self._log.warning(
                "dead_letter",
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                reason=exc.reason,
            )
            await self._dead_letter(txn, record, exc.reason)
            return None

    async def _dead_letter(self, txn: Transaction, record: RawRecord, reason: str) -> None:
        await txn.append_raw(
            dead_letter_topic(self.definition.name, self.settings.namespace),
            record.key,
            dead_letter_value(record, reason, self.producer_name),
        )
        self._tally["dead_letters"] += 1

    def _envelope(
        self,
        emit: Emit,
        cause: Envelope | None,
        correlation_id: str | None,
        index: int | str = 0,
    ) -> Envelope:
        return new_event(
            emit.payload,
            aggregate_id=emit.aggregate_id,
            tenant_id=emit.tenant_id,
            producer=self.producer_name,
            causation=cause,
            correlation_id=correlation_id,
            event_id=derived_event_id(cause.event_id, self.producer_name, index) if cause else None,
            occurred_at=emit.occurred_at,
        )

    async def _emit(self, txn: Transaction, envelope: Envelope) -> Envelope:
        chained = await txn.append(self.output_topic, envelope)
        self.state = self.definition.evolve(self.state, chained)
        self._applied()
        self._tally["events_emitted"] += 1
        return chained

    def _flush_tally(self) -> None:
        # Counters move only for what committed, so /metrics never runs ahead of the log.
        for name, count in self._tally.items():
            self.metrics.count(name, count)
        self._tally.clear()

    def _after_commit(self, txn: Transaction, consumed: Positions) -> None:
        self._flush_tally()
        self._inputs.update(consumed)
        if not self.shared_output:
            for md in txn.delivered:
                if md.topic == self.output_topic:
                    tp = TopicPartition(md.topic, md.partition)
                    self._own[tp] = max(self._own.get(tp, 0), md.offset + 1)

    def _apply_peer(self, record: RawRecord) -> str | None:
        """A record of our family: a peer's event to fold, or our own already applied; why a
        peer's is refused in its host's topic (`virga_runtime.hostcheck`), then not folded."""
        self._own[partition_of(record)] = record.offset + 1
        try:
            envelope = self._decode(record)
        except EventDecodeError as exc:
            return exc.reason if isinstance(exc, ForeignHostEvent) else None
        if envelope.producer != self.producer_name:
            self._fold(envelope)
        return None

    # -- time and readiness --------------------------------------------------------------------

    async def _tick_loop(self) -> None:
        definition = self.definition
        await self.ready.wait()
        if definition.on_ready is not None:
            on_ready = definition.on_ready
            readiness = self._act(lambda: on_ready(self.state), "ready", settled=True)
            if self._operations.in_flight:  # effects resumed from the journal: ticks go on
                self._tasks.append(asyncio.create_task(readiness, name="ready"))
            else:
                await readiness
        if definition.tick is None:
            return
        tick = definition.tick
        while True:
            await asyncio.sleep(definition.tick_seconds)
            await self._act(lambda: tick(self.state, datetime.now(UTC)), "tick")

    async def _act(
        self, plan: Callable[[], Sequence[Intent]], why: str, *, settled: bool = False
    ) -> None:
        """Carry out what time or readiness alone makes happen, in its own transaction.

        `settled` (readiness): plan only once every effect decided before has recorded its
        outcome (those the journal carried over from before a restart among them), and run
        the planned effects after those and before any decided later: a reconciliation
        must see the host as the log says it is, not halfway through a stop.
        """
        assert self._writer is not None
        while True:
            if settled:
                await self._operations.wait_idle()
            async with self._lock:
                if settled and self._operations.in_flight:
                    continue  # something was decided meanwhile: wait for it too
                await self._act_now(plan, why, exclusive=settled)
                return

    async def _act_now(
        self, plan: Callable[[], Sequence[Intent]], why: str, *, exclusive: bool
    ) -> None:
        assert self._writer is not None
        intents = plan()
        if not intents:
            return
        correlation = f"{why}-{self.producer_name}-{time.time_ns()}"
        operations: list[Operation] = []
        async with self._writer.transaction() as txn:
            await self._carry_undecided(txn)
            for index, intent in enumerate(intents):
                if isinstance(intent, Emit):
                    await self._emit(txn, self._envelope(intent, None, correlation))
                else:
                    self._operations.check(intent)
                    operations.append(
                        Operation(intent, index, None, correlation, exclusive=exclusive)
                    )
        self._after_commit(txn, {})
        self._undecided = {}  # carried by that transaction
        for operation in operations:
            self._operations.submit(operation)

    # -- rebuild ------------------------------------------------------------------------------

    def _decode(self, record: RawRecord) -> Envelope:
        """The record's event; EventDecodeError (with its reason) for anything else, an event
        refused in its host's topic among them (`virga_runtime.hostcheck`)."""
        if record.value is None:
            raise EventDecodeError("record has no value")
        envelope = decode(record.value, self.definition.registry)
        if (reason := self._refusal(record.topic, envelope)) is not None:
            raise ForeignHostEvent(reason)
        return envelope

    def _fold(self, envelope: Envelope) -> None:
        try:
            self.state = self.definition.evolve(self.state, envelope)
        except Exception as exc:  # refused when live too, and dead-lettered then
            self._log.warning("event_refused_on_replay", event_id=envelope.event_id, error=str(exc))
            return
        self._applied()

    def _applied(self) -> None:
        self.events_applied += 1
