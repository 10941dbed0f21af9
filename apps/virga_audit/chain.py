"""The hash-chain check behind `virga audit verify`: pure, fed one raw record at a time.

Each producer numbers its events 1, 2, ... (`seq`) and puts the sha256 of its previous record's
bytes in `prev_hash`. Kafka is append-only, so tampering shows up as records the chain does not
vouch for: a seq that never appears (removed), a record whose hash its successor does not carry
(altered), a second record claiming a seq that is already taken (duplicated or forged).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import msgspec

from virga_events import REGISTRY, EventDecodeError, EventRegistry, decode, record_hash

ProblemKind = Literal["altered", "removed", "duplicated", "forged", "unchained", "broken"]


class RecordLocation(NamedTuple):
    """Where a record sits in the log."""

    topic: str
    """Kafka topic."""
    partition: int
    """Partition of the topic."""
    offset: int
    """Offset within the partition."""

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}@{self.offset}"


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """The first break found in one producer's chain."""

    producer: str
    """The envelope's `producer`, e.g. ``scheduler`` or ``compute@host-1``."""
    kind: ProblemKind
    """altered: the record's hash is not its successor's prev_hash; removed: a seq is missing;
    duplicated: a second copy of a chained record; forged: a different record claiming a
    seq already taken; unchained: seq 0 (written around the chaining writer); broken: the
    first record of a chain carries a prev_hash, or its link to the previous one is wrong."""
    seq: int
    """The seq at fault (for `removed`, the first missing one)."""
    event_id: str | None
    """event_id of the record at fault; None for a removed record."""
    location: RecordLocation | None
    """Where the record at fault is; None for a removed record."""
    related: RecordLocation | None
    """The record it is judged against: the successor, the original, or the next one seen."""
    detail: str
    """One sentence for people."""


@dataclass(frozen=True, slots=True)
class UndecodableRecord:
    """A record of an event topic that is not a valid Virga event."""

    location: RecordLocation
    reason: str


@dataclass(frozen=True, slots=True)
class ProducerSummary:
    """How far a producer's chain was checked."""

    producer: str
    events: int
    """Records seen claiming this producer."""
    last_seq: int
    """The last seq the chain vouches for."""


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of checking every chain of a namespace."""

    records: int
    """Records read."""
    producers: list[ProducerSummary]
    problems: list[ChainProblem]
    """At most one per producer: the first break of its chain."""
    undecodable: list[UndecodableRecord] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.undecodable


class _Header(msgspec.Struct):
    """The envelope fields the chain needs; read even when the payload is unreadable."""

    event_id: str
    producer: str
    seq: int = 0
    prev_hash: str = ""


_HEADER = msgspec.json.Decoder(_Header)


class _Link(NamedTuple):
    seq: int
    prev_hash: str
    hash: str
    event_id: str
    location: RecordLocation


class _Chain:
    """One producer's head, the records read ahead of it, and a window of accepted hashes."""

    def __init__(self, producer: str, window: int) -> None:
        self.producer = producer
        self.seq = 0
        self.hash = ""
        self.events = 0
        self.pending: dict[int, list[_Link]] = {}
        self.buffered = 0
        self.accepted: OrderedDict[int, _Link] = OrderedDict()
        self._window = window
        self.problem: ChainProblem | None = None

    def add(self, link: _Link, max_buffered: int) -> None:
        self.events += 1
        if self.problem is not None:
            return
        if link.seq <= 0:
            self._fail(
                "unchained", link, None, "has seq 0: it was not written by a chaining writer"
            )
        elif link.seq <= self.seq:
            self._repeat(link)
        else:
            self.pending.setdefault(link.seq, []).append(link)
            self.buffered += 1
            self.advance(at_end=False)
            if self.problem is None and self.buffered > max_buffered:
                # What was awaited has not come in while this many later records did: judge
                # with what is here rather than hold the rest of the producer's log in memory.
                self.advance(at_end=True)

    def advance(self, *, at_end: bool) -> None:
        """Accept records while the next seq and (unless at the end) its successor are known;
        the successor is what tells a genuine record from an altered or forged one."""
        while self.problem is None:
            expected = self.seq + 1
            candidates = self.pending.get(expected)
            if candidates is None:
                if at_end and self.pending:
                    self._gap()
                return
            successors = self.pending.get(expected + 1, [])
            if not successors and not at_end:
                return
            if not at_end and not self._vouched(candidates, successors):
                return  # the successor that vouches for one of them may still be on its way
            del self.pending[expected]
            self.buffered -= len(candidates)
            self._step(candidates, successors)

    def _vouched(self, candidates: list[_Link], successors: list[_Link]) -> bool:
        vouched = {s.prev_hash for s in successors}
        return any(c.hash in vouched and c.prev_hash == self.hash for c in candidates)

    def _step(self, candidates: list[_Link], successors: list[_Link]) -> None:
        linked = [c for c in candidates if c.prev_hash == self.hash]
        if not linked:
            first = candidates[0]
            if self.seq == 0:
                self._fail("broken", first, None, "is the chain's first but carries a prev_hash")
            else:
                previous = self.accepted.get(self.seq)
                self._fail(
                    "broken",
                    first,
                    previous.location if previous else None,
                    f"carries a prev_hash that is not the hash of seq {self.seq}",
                )
            return
        vouched = {s.prev_hash for s in successors}
        genuine = next((c for c in linked if c.hash in vouched), None)
        if genuine is None:
            if successors:
                suspect = linked[0]
                self._fail(
                    "altered",
                    suspect,
                    successors[0].location,
                    f"no longer hashes to the prev_hash of its successor seq {suspect.seq + 1}",
                )
                return
            genuine = linked[0]  # the chain's last record: nothing after it to vouch for it
        for other in candidates:
            if other is genuine:
                continue
            if other.hash == genuine.hash:
                self._fail("duplicated", other, genuine.location, "repeats the same record")
            elif successors:
                self._fail(
                    "forged",
                    other,
                    genuine.location,
                    "claims a seq already taken by the record its successor vouches for",
                )
            else:
                self._fail(
                    "forged",
                    other,
                    genuine.location,
                    "claims the same seq as another record with different content",
                )
            return
        self.seq, self.hash = genuine.seq, genuine.hash
        self.accepted[genuine.seq] = genuine
        if len(self.accepted) > self._window:
            self.accepted.popitem(last=False)

    def _repeat(self, link: _Link) -> None:
        original = self.accepted.get(link.seq)
        if original is None:
            self._fail("forged", link, None, "repeats a seq the chain passed long before")
        elif original.hash == link.hash:
            self._fail("duplicated", link, original.location, "repeats the same record")
        else:
            self._fail(
                "forged",
                link,
                original.location,
                "claims a seq already taken by the record its successor vouches for",
            )

    def _gap(self) -> None:
        missing = self.seq + 1
        following = min(self.pending)
        link = self.pending[following][0]
        last = missing if following == missing + 1 else f"{missing}..{following - 1}"
        self.problem = ChainProblem(
            producer=self.producer,
            kind="removed",
            seq=missing,
            event_id=None,
            location=None,
            related=link.location,
            detail=f"seq {last} missing: seq {self.seq} is followed by seq {following}",
        )
        self.pending.clear()

    def _fail(
        self, kind: ProblemKind, link: _Link, related: RecordLocation | None, why: str
    ) -> None:
        self.problem = ChainProblem(
            producer=self.producer,
            kind=kind,
            seq=link.seq,
            event_id=link.event_id,
            location=link.location,
            related=related,
            detail=f"seq {link.seq} (event {link.event_id} at {link.location}) {why}",
        )
        self.pending.clear()


class ChainChecker:
    """Checks every producer's chain from records given in any cross-partition interleaving.

    Records must come in offset order within each partition (as Kafka delivers them). Memory
    holds per producer its head, the records read ahead of it (at most `max_buffered`), and
    the hashes of its last `window` accepted records, to classify a late repeat.
    """

    def __init__(
        self,
        registry: EventRegistry = REGISTRY,
        *,
        max_buffered: int = 100_000,
        window: int = 1_000,
    ) -> None:
        self._registry = registry
        self._max_buffered = max_buffered
        self._window = window
        self._chains: dict[str, _Chain] = {}
        self._undecodable: list[UndecodableRecord] = []
        self.records = 0
        self._buffered = 0
        self.peak_buffered = 0
        """The most records held ahead of their chains' heads at once (all producers)."""

    def add(self, location: RecordLocation, value: bytes | None) -> None:
        self.records += 1
        if value is None:
            self._undecodable.append(UndecodableRecord(location, "record has no value"))
            return
        try:
            header = _HEADER.decode(value)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            self._undecodable.append(UndecodableRecord(location, f"bad envelope: {exc}"))
            return
        try:
            decode(value, self._registry)
        except EventDecodeError as exc:
            # Still a link of its producer's chain: report it, and check the chain through it.
            self._undecodable.append(UndecodableRecord(location, exc.reason))
        chain = self._chains.get(header.producer)
        if chain is None:
            chain = self._chains[header.producer] = _Chain(header.producer, self._window)
        link = _Link(header.seq, header.prev_hash, record_hash(value), header.event_id, location)
        before = chain.buffered
        chain.add(link, self._max_buffered)
        self._buffered += chain.buffered - before
        if self._buffered > self.peak_buffered:
            self.peak_buffered = self._buffered

    def report(self) -> VerifyReport:
        """Finish: whatever is still buffered is judged without waiting for more records."""
        problems: list[ChainProblem] = []
        producers: list[ProducerSummary] = []
        for name in sorted(self._chains):
            chain = self._chains[name]
            chain.advance(at_end=True)
            if chain.problem is not None:
                problems.append(chain.problem)
            producers.append(ProducerSummary(name, chain.events, chain.seq))
        return VerifyReport(self.records, producers, problems, list(self._undecodable))
