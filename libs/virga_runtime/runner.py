"""Runs one service instance: rebuild from snapshot + log, then decide on new events, forever."""

from __future__ import annotations

import asyncio
import gc
import time

from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from virga_eventlog import (
    ChainHead,
    EventWriter,
    KafkaSettings,
    LogReader,
    Positions,
    RecentIds,
    dead_letter_topic,
    decode_positions,
    encode_positions,
)
from virga_eventlog.stopping import stop_within
from virga_runtime.appends import Appender, PendingAppend
from virga_runtime.lease import HostLease
from virga_runtime.observability import serve_health
from virga_runtime.rebuild import committed_offsets, fold_inputs, fold_own, refused_live
from virga_runtime.runner_config import RunnerConfig
from virga_runtime.service import S, ServiceDefinition
from virga_runtime.snapshots import (
    Snapshot,
    read_latest,
    restore_state,
    snapshot_of,
    write_snapshot,
)

HOST_TOPICS_SECONDS = 5.0
"""How often a service looks for host topics made since it started (a host just added): its
agents' events wait at most this long, after their topic exists, to be read."""

STOP_SECONDS = 5.0
"""How long closing waits on the producer (which flushes what it still holds) and on the
consumer before dropping them: a log that is away never answers, and a stop must end."""
FINAL_WRITES_SECONDS = 20.0
"""...and on its final writes (appends, outcomes, snapshot, lease) before abandoning them: no
input is lost (uncommitted ones are read again, outcomes return from the journal)."""


class ServiceRunner(Appender[S]):
    """The runtime of README.md "How a service lives": rebuild, ready, decide, snapshot."""

    def __init__(
        self, definition: ServiceDefinition[S], settings: KafkaSettings, config: RunnerConfig
    ) -> None:
        super().__init__(definition, settings, config)
        self.ready = asyncio.Event()
        self.rebuild_records = 0
        self.http_port: int | None = None
        self._start_ends: Positions = {}
        self._stop = asyncio.Event()
        self._appends: asyncio.Queue[PendingAppend] = asyncio.Queue()
        self._applied_at_snapshot = 0
        self._snapshot_at = time.monotonic()
        self._rebuild_started = time.monotonic()
        self._reader: LogReader | None = None
        self._http: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lease: HostLease | None = None
        self._host_topics_at = 0.0
        self._init_effects()

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Rebuild state from the newest snapshot and the log; serve health; begin deciding."""
        # Rebuilding allocates millions of long-lived objects: the cyclic GC would rescan them
        # again and again. Off while rebuilding, then they are frozen out of its generations.
        gc.disable()
        try:
            await self._start()
        except BaseException:
            await self.close(snapshot=False)
            raise
        finally:
            gc.freeze()
            gc.enable()

    async def _start(self) -> None:
        started = self._rebuild_started = time.monotonic()
        definition = self.definition
        if self.config.instance:
            # Before the producer below fences a live agent of this host, and before anything
            # is decided or done: a live one makes this start fail instead.
            self._lease = await HostLease.checked(self, self.config.host_lease_seconds)
        # Fence any older instance with our transactional id first, so that nothing it might
        # still commit can slip in after the offsets and ends read below.
        self._writer = EventWriter(self.settings, transactional_id=self.transactional_id)
        await self._writer.start()
        if self._lease is not None:
            self._tasks.append(await self._lease.take(self._writer, self._lock))
        latest = await read_latest(self.settings, self.snapshot_topic, self.producer_name)
        snap = snapshot_of(latest, self.producer_name)
        snap_seq = 0
        restored = None
        if snap is not None:
            restored = restore_state(
                snap, definition.restore, definition.state_version, self.producer_name
            )
        if snap is not None and restored is not None:
            self.state = restored
            self._inputs = decode_positions(snap.inputs)
            self._own = decode_positions(snap.own)
            self.recent = RecentIds.load(snap.recent_ids, self.config.dedupe_capacity)
            snap_seq = snap.chain[0]
            head = ChainHead(*snap.chain)
            self.events_applied = snap.events_applied
        else:
            head = ChainHead(0, "")
        self._reader = LogReader(
            self.settings,
            [*definition.input_topics, definition.output_topic, self.output_topic],
            client_id=self.transactional_id,
            families=self.families,
        )
        await self._reader.start()
        input_tps = self._reader.partitions(definition.input_topics)
        own_tps = self._reader.partitions([definition.output_topic])
        self._start_ends = await self._reader.end_offsets()
        committed = await committed_offsets(
            self.settings, self.group_id, input_tps, f"{self.transactional_id}-admin"
        )
        # Snapshots are taken right after a commit, so either source is a decided position;
        # the larger survives the broker expiring an idle group's offsets.
        decided = {tp: max(committed.get(tp, 0), self._inputs.get(tp, 0)) for tp in input_tps}

        if definition.placed_on is not None and self.families:
            self._refused_live = await refused_live(
                self.settings,
                dead_letter_topic(definition.name, self.settings.namespace),
                self.producer_name,
                f"{self.transactional_id}-refused",
            )
        head = await self._fold_log(decided, own_tps, snap_seq, head)

        self._writer.head = head
        self._reader.seek({**self._inputs, **self._own})
        if not self.shared_output:
            self._reader.pause(own_tps)
        self.metrics.rebuild_records.set(self.rebuild_records)
        self._log.info(
            "rebuilt",
            records=self.rebuild_records,
            seconds=time.monotonic() - started,
            from_snapshot=restored is not None,
        )
        self._check_ready()
        await self._serve_http()
        self._tasks.append(asyncio.create_task(self._append_loop(), name="appends"))
        self._tasks.append(asyncio.create_task(self._outcome_loop(), name="outcomes"))
        self._resume_operations(latest)
        if definition.tick is not None or definition.on_ready is not None:
            self._tasks.append(asyncio.create_task(self._tick_loop(), name="ticks"))
        if definition.signals is not None:
            self._tasks.append(asyncio.create_task(self._signal_loop(), name="signals"))

    async def _fold_log(
        self, decided: Positions, own_tps: list[TopicPartition], snap_seq: int, head: ChainHead
    ) -> ChainHead:
        """Phase A: inputs already decided on. Phase B: our own decisions about them. Every
        output was committed with its input's offset, so each cause precedes its effects."""
        assert self._reader is not None
        registry, evolve = self.definition.registry, self.definition.evolve
        refuse = self._replay_refusal if self.families else None
        key = self._dedupe_key if self.families else None
        async for batch in self._reader.read_range(self._inputs, decided):
            self.rebuild_records += len(batch)
            self.state, applied = fold_inputs(
                batch, registry, evolve, self.state, self.recent, refuse, key
            )
            self.events_applied += applied
        self._inputs = dict(decided)
        own_ends = {tp: self._start_ends[tp] for tp in own_tps}
        async for batch in self._reader.read_range(self._own, own_ends):
            self.rebuild_records += len(batch)
            self.state, applied, head = fold_own(
                batch, registry, evolve, self.state, self.producer_name, snap_seq, head, refuse
            )
            self.events_applied += applied
        self._own = dict(own_ends)
        return head

    async def serve(self) -> None:
        """Decide on new input events until `request_stop`; the in-flight batch finishes."""
        assert self._reader is not None
        while not self._stop.is_set():
            records = await self._reader.read(
                timeout_ms=100, max_records=self.config.max_batch_records
            )
            if records:
                async with self._lock:
                    await self._process(records)
                    await self._maybe_snapshot()
            elif self._undecided:
                async with self._lock:
                    await self._commit_undecided()
            elif self._snapshot_due(idle=True):
                async with self._lock:
                    await self._snapshot()
            if not self.ready.is_set():
                await self._advance_past_markers()
            await self._read_new_host_topics()
            self._check_ready()
            for task in self._tasks:
                if task.done() and (error := task.exception()) is not None:
                    raise error
            if self._operations.failure is not None:
                raise self._operations.failure

    def request_stop(self) -> None:
        self._stop.set()

    async def close(self, *, snapshot: bool = True) -> None:
        """Flush pending appends, write a final snapshot (`FINAL_WRITES_SECONDS` for both), close
        clients and HTTP. The producer and the consumer get `STOP_SECONDS` each to stop.

        `snapshot=False` leaves the log as a crash would (tests of rebuild use it).
        """
        self._stop.set()
        # Cancel the append and tick loops only between transactions: one cancelled inside a
        # commit would leave the producer unable to begin the final snapshot's transaction.
        async with self._lock:
            for task in self._tasks:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # Effects still running are abandoned: their journal records bring them back.
        await self._operations.cancel()
        if self._writer is not None:
            try:
                writes = asyncio.ensure_future(self._final_writes(snapshot))
                if not (await asyncio.wait({writes}, timeout=FINAL_WRITES_SECONDS))[0]:
                    writes.cancel()  # a commit the log never ends
                    self._log.warning("final_writes_abandoned", seconds=FINAL_WRITES_SECONDS)
                else:
                    writes.result()
            finally:
                if self._lease is not None:
                    self._lease.closed()
                try:
                    await self._writer.discard(STOP_SECONDS)
                except Exception as exc:  # stuck on an absent log: dropped all the same
                    self._log.warning("producer_stop_abandoned", error=repr(exc))
                self._writer = None
        if self._reader is not None:
            if (failure := await stop_within(self._reader.stop(), STOP_SECONDS)) is not None:
                self._log.warning("consumer_stop_abandoned", error=failure)
            self._reader = None
        if self._http is not None:
            await self._http.cleanup()
            self._http = None

    async def _final_writes(self, snapshot: bool) -> None:
        assert self._writer is not None
        async with self._lock:
            await self._drain_appends()
            await self._commit_outcomes()
            if snapshot:
                await self._commit_undecided()
            if snapshot and self.events_applied != self._applied_at_snapshot:
                await self._snapshot()
            if snapshot and self._lease is not None and self._lease.claimed:
                async with self._writer.transaction() as txn:
                    await self._lease.release(txn)

    async def run(self) -> None:
        await self.start()
        try:
            await self.serve()
        finally:
            await self.close()

    async def _read_new_host_topics(self) -> None:
        """Every `HOST_TOPICS_SECONDS`, start reading the host topics made since (`families`)."""
        assert self._reader is not None
        if not self.families or time.monotonic() < self._host_topics_at:
            return
        self._host_topics_at = time.monotonic() + HOST_TOPICS_SECONDS
        try:
            added = await self._reader.refresh()
        except KafkaError as exc:  # the log is away: the next look finds them
            self._log.info("host_topics_unknown", error=repr(exc))
            return
        if added:
            self._log.info("host_topics_added", topics=sorted({tp.topic for tp in added}))
        if not self.shared_output:
            self._reader.pause([tp for tp in added if self._is_own(tp.topic)])

    # -- readiness -----------------------------------------------------------------------------

    async def _advance_past_markers(self) -> None:
        """Move input positions past transaction markers the consumer has skipped.

        A committed offset points just after an input's last record, but the end offset taken
        at start counts the commit marker after it; only the consumer's position knows it was
        passed. Every record before that position has been processed by now.
        """
        assert self._reader is not None
        for tp in list(self._inputs):
            position = await self._reader.position(tp)
            if position > self._inputs[tp]:
                self._inputs[tp] = position

    def _check_ready(self) -> None:
        self.metrics.events_applied.set(self.events_applied)
        if self.ready.is_set():
            self.metrics.lag.set(self._lag())
            return
        behind = [tp for tp in self._inputs if self._inputs[tp] < self._start_ends.get(tp, 0)]
        if not behind:
            seconds = time.monotonic() - self._rebuild_started
            self.metrics.rebuild_seconds.set(seconds)
            self.metrics.ready.set(1)
            self.ready.set()
            self._log.info(
                "ready", rebuild_seconds=round(seconds, 3), events_applied=self.events_applied
            )
        self.metrics.lag.set(self._lag())

    def _lag(self) -> int:
        assert self._reader is not None
        return sum(self._reader.lag(tp, pos) for tp, pos in self._inputs.items())

    # -- ticks and snapshots ------------------------------------------------------------------

    def _snapshot_due(self, idle: bool = False) -> bool:
        changed = self.events_applied - self._applied_at_snapshot
        if changed <= 0:
            return False
        if changed >= self.config.snapshot_every_events and not idle:
            return True
        return time.monotonic() - self._snapshot_at >= self.config.snapshot_every_seconds

    async def _maybe_snapshot(self) -> None:
        if self._snapshot_due():
            await self._snapshot()

    async def _snapshot(self) -> None:
        assert self._writer is not None
        snapshot = Snapshot(
            state=self.definition.snapshot(self.state),
            inputs=encode_positions(self._inputs),
            own=encode_positions(self._own),
            recent_ids=self.recent.dump(),
            chain=(self._writer.head.seq, self._writer.head.hash),
            events_applied=self.events_applied,
            state_version=self.definition.state_version,
        )
        async with self._writer.transaction() as txn:
            size = await write_snapshot(txn, self.snapshot_topic, self.producer_name, snapshot)
        self._applied_at_snapshot = self.events_applied
        self._snapshot_at = time.monotonic()
        self.metrics.snapshots.inc()
        self._log.info("snapshot_written", bytes=size, events_applied=self.events_applied)

    # -- HTTP -----------------------------------------------------------------------------------

    async def _serve_http(self) -> None:
        if self.config.http_port is not None:
            self._http, self.http_port = await serve_health(
                self.config.http_host,
                self.config.http_port,
                self.ready.is_set,
                self.metrics,
                self.config.http_routes,
            )
