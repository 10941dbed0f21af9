"""Reads a set of topics from given offsets: up to a fixed end ("caught up"), then tailing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from virga_eventlog.records import Positions, RawRecord
from virga_eventlog.settings import KafkaSettings
from virga_eventlog.topics import family_of


class LogReader:
    """One consumer, manually assigned to every partition of its topics (no group membership).

    Virga services are single writers that rebuild from the whole log, so they never share
    partitions through a consumer group; positions come from snapshots and committed offsets.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Iterable[str],
        *,
        client_id: str,
        read_committed: bool = True,
        fetch_wait_ms: int = 10,
        families: Iterable[str] = (),
        partition_fetch_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        """`fetch_wait_ms` bounds how long the broker holds an empty fetch. Under read_committed
        a transaction's commit marker does not wake a waiting fetch, so this wait is added to
        every hop an event makes between services: keep it short.

        `families` (`virga_eventlog.topics.agent_families`): of these topics, every per-host
        topic (`<family>.<host>`) the broker has is read too, those made later once `refresh`
        finds them; `partitions([family])` includes them.

        `partition_fetch_bytes` bounds what one fetch brings of each partition (a reader that
        pauses partitions often, and so drops what was fetched ahead for them, wants it small)."""
        self.families = tuple(families)
        self.topics = tuple(dict.fromkeys([*topics, *self.families]))
        self._settings = settings
        self._client_id = client_id
        self._consumer = AIOKafkaConsumer(
            **settings.client_kwargs(),
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed" if read_committed else "read_uncommitted",
            # Rebuilds read millions of small records: fetch big batches.
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=partition_fetch_bytes,
            fetch_max_wait_ms=fetch_wait_ms,
        )
        self._partitions: list[TopicPartition] = []

    async def start(self, metadata_timeout: float = 30.0) -> None:
        await self._consumer.start()
        self._partitions = await self._discover(metadata_timeout)
        self._consumer.assign(self._partitions)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def __aenter__(self) -> LogReader:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _discover(self, wait_seconds: float) -> list[TopicPartition]:
        """Every partition of our topics; waits for topics created a moment ago to appear."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        admin = AIOKafkaAdminClient(
            **self._settings.client_kwargs(), client_id=f"{self._client_id}-meta"
        )
        await admin.start()
        try:
            if self.families:
                listed = sorted(await admin.list_topics())
                self.topics = tuple(dict.fromkeys([*self.topics, *self._members(listed)]))
            while True:
                described = await admin.describe_topics(list(self.topics))
                counts = {
                    t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0
                }
                missing = [t for t in self.topics if not counts.get(t)]
                if not missing:
                    return [TopicPartition(t, p) for t in self.topics for p in range(counts[t])]
                if loop.time() > deadline:
                    raise TimeoutError(f"topics {missing} have no partitions (do they exist?)")
                await asyncio.sleep(0.2)
        finally:
            await admin.close()

    def _members(self, topics: Iterable[str]) -> list[str]:
        return [t for t in topics if (member := family_of(t, self.families)) and member[1]]

    async def refresh(self) -> list[TopicPartition]:
        """Start reading the per-host topics of our families made since (from their start);
        returns their partitions. Assigning replaces the consumer's assignment, so every
        partition already read is put back where it was, paused if it was."""
        cluster = await self._consumer._client.fetch_all_metadata()
        new = [t for t in self._members(sorted(cluster.topics())) if t not in self.topics]
        added = [
            TopicPartition(t, p) for t in new for p in sorted(cluster.partitions_for_topic(t) or ())
        ]
        if not added:
            return []
        positions = await self.positions()
        paused = self._consumer.paused()
        self.topics = (*self.topics, *dict.fromkeys(tp.topic for tp in added))
        self._partitions = [*self._partitions, *added]
        self._consumer.assign(self._partitions)
        self.seek(positions)
        self.pause(paused)
        return added

    def partitions(self, topics: Iterable[str] | None = None) -> list[TopicPartition]:
        """Ours of `topics` (all by default); a family's include its per-host topics'."""
        if topics is None:
            return list(self._partitions)
        wanted = set(topics)
        return [
            tp
            for tp in self._partitions
            if tp.topic in wanted
            or ((member := family_of(tp.topic, self.families)) and member[0] in wanted)
        ]

    async def end_offsets(self, partitions: Iterable[TopicPartition] | None = None) -> Positions:
        """High-water marks (last stable offsets under read_committed)."""
        tps = list(partitions) if partitions is not None else self._partitions
        if not tps:
            return {}
        ends: dict[TopicPartition, int] = await self._consumer.end_offsets(tps)
        return dict(ends)

    def seek(self, positions: Positions) -> None:
        """Move each partition in `positions` to its offset; others start at the beginning."""
        for tp in self._partitions:
            self._consumer.seek(tp, positions.get(tp, 0))

    async def position(self, tp: TopicPartition) -> int:
        offset: int = await self._consumer.position(tp)
        return offset

    async def positions(self, partitions: Iterable[TopicPartition] | None = None) -> Positions:
        tps = list(partitions) if partitions is not None else self._partitions
        return {tp: await self.position(tp) for tp in tps}

    def pause(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.pause(*partitions)

    def resume(self, partitions: Iterable[TopicPartition]) -> None:
        self._consumer.resume(*partitions)

    def lag(self, tp: TopicPartition, position: int) -> int:
        """Records behind the last fetched end; 0 when nothing is known yet."""
        end = self._consumer.last_stable_offset(tp)
        return max(0, end - position) if end is not None else 0

    async def read(self, timeout_ms: int = 200, max_records: int | None = None) -> list[RawRecord]:
        """One fetch from every unpaused partition, each partition's records in offset order."""
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        out: list[RawRecord] = []
        for messages in batches.values():
            out.extend(messages)
        return out

    async def read_range(
        self, start: Positions, until: Positions, timeout_ms: int = 200
    ) -> AsyncIterator[list[RawRecord]]:
        """Yield batches of every record in [start, until) of the partitions in `until`.

        Partitions not in `until` are paused for the duration and resumed afterwards; the
        caller seeks where it wants to go next.
        """
        targets = {tp: end for tp, end in until.items() if end > start.get(tp, 0)}
        self.pause([tp for tp in self._partitions if tp not in targets])
        for tp in targets:
            self._consumer.seek(tp, start.get(tp, 0))
        try:
            pending = set(targets)
            while pending:
                fetched = await self._consumer.getmany(timeout_ms=timeout_ms)
                batch: list[RawRecord] = []
                for tp, messages in fetched.items():
                    end = targets.get(tp)
                    if end is None or not messages:
                        continue
                    if messages[-1].offset < end:
                        batch.extend(messages)
                    else:
                        batch.extend(m for m in messages if m.offset < end)
                if batch:
                    yield batch
                done = {tp for tp in pending if await self.position(tp) >= targets[tp]}
                if done:
                    self.pause(done)
                    pending -= done
        finally:
            self.resume(self._partitions)
