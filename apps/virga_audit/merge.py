"""Event time (`occurred_at`) order from records read partition by partition, in bounded memory.

Kafka delivers each partition in append order; the services append their events about in the
order they stamped them, so each partition is nearly sorted by event time already, and across
partitions and topics the times interleave. `EventTimeMerge` merges them as a k-way merge
does, given how far each partition goes back in time (its *disorder*: the most a record's
event time is older than the newest before it in the partition, measured by a first pass):
no record still unread in partition p can be older than p's newest event time so far minus
p's disorder, its *floor*. An event is held until it is older than every open partition's
floor (the *watermark*), and is then released: exactly the order of sorting the whole log.

Memory is what lies between the slowest partition and the others: `ahead` names the partitions
whose floor is more than `window` past the watermark, for the reader to pause until the others
catch up. What is held then depends on how many events the log has per second of event time
(over the window plus the disorder), never on how long the log is.
"""

from __future__ import annotations

import heapq
from datetime import datetime, timedelta
from itertools import count

from virga_events import Envelope

DEFAULT_WINDOW = timedelta(minutes=2)
"""How far past the slowest partition the others are read before they are paused."""

Partition = tuple[str, int]
"""(topic, partition)."""

_Entry = tuple[datetime, str, int, int, Envelope]


class EventTimeMerge:
    """Holds what has been read until event-time order allows it out; pure, no I/O."""

    def __init__(self, window: timedelta = DEFAULT_WINDOW) -> None:
        self._disorder: dict[Partition, timedelta] = {}
        """Open partitions (not read to their end yet) -> how far back in time they may go."""
        self._floor: dict[Partition, datetime] = {}
        """Open partition -> the oldest event time it can still bring."""
        self._heap: list[_Entry] = []
        self._order = count()  # ties in (time, producer, seq) stay in read order
        self._window = window
        self._released: _Entry | None = None
        self.peak = 0
        """The most events held at once."""
        self.late = 0
        """Events older than one already released (a partition went back further than its
        disorder said): folded out of order. Stays 0 when the disorder was measured on the
        same records."""

    def __len__(self) -> int:
        return len(self._heap)

    def open(self, partition: Partition, first: datetime, disorder: timedelta) -> None:
        """A partition to be read, whose first event occurred at `first` and whose events go
        back in time by at most `disorder`: nothing older than `first - disorder` is released
        until it is read further."""
        self._disorder[partition] = disorder
        self._floor[partition] = first - disorder

    def seen(self, partition: Partition, at: datetime) -> None:
        """A record of `partition` occurred at `at` (whether or not it is pushed)."""
        disorder = self._disorder.get(partition)
        if disorder is None:
            return  # closed, or never opened
        floor = at - disorder
        known = self._floor.get(partition)
        if known is None or floor > known:
            self._floor[partition] = floor

    def push(self, partition: Partition, envelope: Envelope) -> None:
        """Hold `envelope` (read from `partition`) until its turn."""
        self.seen(partition, envelope.occurred_at)
        entry = (envelope.occurred_at, envelope.producer, envelope.seq, next(self._order), envelope)
        if self._released is not None and entry < self._released:
            self.late += 1
        heapq.heappush(self._heap, entry)
        if len(self._heap) > self.peak:
            self.peak = len(self._heap)

    def close(self, partition: Partition) -> None:
        """`partition` is read to its end: it holds nothing back any more."""
        self._disorder.pop(partition, None)
        self._floor.pop(partition, None)

    def watermark(self) -> datetime | None:
        """The lowest floor of the open partitions; None when none is open."""
        return min(self._floor.values()) if self._floor else None

    def release(self) -> list[Envelope]:
        """The events no open partition can precede, in event-time order."""
        if not self._disorder:
            return self.drain()
        mark = self.watermark()
        out: list[Envelope] = []
        if mark is None:
            return out
        heap = self._heap
        while heap and heap[0][0] < mark:
            entry = heapq.heappop(heap)
            self._released = entry
            out.append(entry[-1])
        return out

    def drain(self) -> list[Envelope]:
        """Everything held, in order (at the end of the log)."""
        entries = sorted(self._heap)
        self._heap.clear()
        if entries:
            self._released = entries[-1]
        return [entry[-1] for entry in entries]

    def ahead(self) -> set[Partition]:
        """Open partitions whose floor is more than `window` past the watermark: to pause."""
        mark = self.watermark()
        if mark is None:
            return set()
        limit = mark + self._window
        return {p for p, floor in self._floor.items() if floor > limit}
