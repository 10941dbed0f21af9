"""Effects beside the decide loop: per-key order, other keys meanwhile, barriers, the journal."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import pytest

from virga_events.catalog.compute import HostHeartbeat
from virga_runtime.effect_codec import decode_effect, encode_effect
from virga_runtime.effects import EffectScheduler, Operation
from virga_runtime.journal import encode_operation, journal_key, pending_operations
from virga_runtime.service import Emit


@dataclass(frozen=True, slots=True)
class Slow:
    name: str
    on: str

    @property
    def key(self) -> str:
        return self.on


class SlowHandler:
    """Each effect waits until the test releases it; what ran, and in which order."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.began: list[str] = []
        self.ended: list[str] = []

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def __call__(self, effect: Slow) -> Sequence[Emit]:
        self.began.append(effect.name)
        await self.gate(effect.name).wait()
        self.ended.append(effect.name)
        return [Emit(HostHeartbeat(running=len(self.ended)), effect.on, None)]


def scheduler(handler: SlowHandler) -> tuple[EffectScheduler, list[str]]:
    finished: list[str] = []

    def done(operation: Operation, emits: Sequence[Emit]) -> None:
        finished.append(operation.effect.name)
        effects.settled()

    effects = EffectScheduler({Slow: handler}, done)
    return effects, finished


def op(name: str, key: str, *, exclusive: bool = False) -> Operation:
    return Operation(Slow(name, key), 0, None, None, exclusive=exclusive)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_effect_waits_for_the_one_before_it_on_its_key_and_no_other() -> None:
    handler = SlowHandler()
    effects, finished = scheduler(handler)
    effects.submit(op("stop-a", "a"))  # a guest that takes its whole grace
    effects.submit(op("delete-a", "a"))  # decided while the stop runs
    effects.submit(op("spawn-b", "b"))
    await settle()
    assert handler.began == ["stop-a", "spawn-b"]  # b does not wait for a
    handler.gate("spawn-b").set()
    await settle()
    assert finished == ["spawn-b"]
    assert "delete-a" not in handler.began  # never overtakes the stop
    handler.gate("delete-a").set()  # released early: still runs only after the stop
    await settle()
    assert "delete-a" not in handler.began
    handler.gate("stop-a").set()
    await settle()
    assert finished == ["spawn-b", "stop-a", "delete-a"]
    assert effects.in_flight == 0


async def test_an_exclusive_effect_runs_after_all_before_it_and_before_all_after_it() -> None:
    handler = SlowHandler()
    effects, finished = scheduler(handler)
    effects.submit(op("stop-a", "a"))
    effects.submit(op("reconcile", "host", exclusive=True))
    effects.submit(op("spawn-b", "b"))
    await settle()
    assert handler.began == ["stop-a"]
    handler.gate("spawn-b").set()
    handler.gate("reconcile").set()
    await settle()
    assert handler.began == ["stop-a"]
    handler.gate("stop-a").set()
    await settle()
    assert finished == ["stop-a", "reconcile", "spawn-b"]


async def test_idle_only_once_every_outcome_is_settled() -> None:
    handler = SlowHandler()
    finished: list[Operation] = []
    effects = EffectScheduler({Slow: handler}, lambda operation, _: finished.append(operation))
    effects.submit(op("stop-a", "a"))
    idle = asyncio.create_task(effects.wait_idle())
    handler.gate("stop-a").set()
    await settle()
    assert len(finished) == 1
    assert not idle.done()
    effects.settled()
    await settle()
    assert idle.done()


async def test_a_handler_that_raises_is_kept_as_the_failure_and_nothing_is_reported() -> None:
    async def broken(effect: Slow) -> Sequence[Emit]:
        raise RuntimeError("hypervisor gone")

    reported: list[Operation] = []
    effects = EffectScheduler({Slow: broken}, lambda operation, _: reported.append(operation))
    effects.submit(op("stop-a", "a"))
    await settle()
    assert isinstance(effects.failure, RuntimeError)
    assert reported == []


async def test_cancel_abandons_running_effects() -> None:
    handler = SlowHandler()
    effects, finished = scheduler(handler)
    effects.submit(op("stop-a", "a"))
    effects.submit(op("delete-a", "a"))
    await settle()
    await effects.cancel()
    handler.gate("stop-a").set()
    handler.gate("delete-a").set()
    await settle()
    assert finished == []
    assert handler.ended == []


def test_an_effect_without_a_handler_is_refused_before_anything_commits() -> None:
    effects = EffectScheduler({}, lambda operation, _: None)
    with pytest.raises(LookupError):
        effects.check(Slow("x", "a"))


# -- the journal ---------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True, slots=True)
class FileDisk:
    path: str


@dataclass(frozen=True, slots=True)
class NetDisk:
    pool: str
    monitors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Nested:
    disks: tuple[FileDisk | NetDisk, ...]
    at: datetime
    colour: Colour
    mode: Literal["fast", "slow"]
    tags: frozenset[str]
    limits: dict[str, int]
    boot: FileDisk | None = None
    ratio: float = 1.0

    @property
    def key(self) -> str:
        return "n"


NESTED = Nested(
    disks=(FileDisk("/a"), NetDisk("rbd", ("m1", "m2"))),
    at=datetime(2026, 12, 4, 20, 0, tzinfo=UTC),
    colour=Colour.RED,
    mode="slow",
    tags=frozenset({"x", "y"}),
    limits={"cpu": 2},
    boot=None,
    ratio=2,
)


def test_the_codec_writes_back_unions_of_dataclasses_times_enums_and_collections() -> None:
    decoded = decode_effect(Nested, encode_effect(NESTED))
    assert decoded == NESTED
    assert isinstance(decoded.disks[1], NetDisk)
    assert isinstance(decoded.ratio, float)


def test_the_journal_holds_exactly_the_operations_whose_outcome_never_committed() -> None:
    producer = "svc@hv-1"
    first = Operation(NESTED, 0, "cause-1", "corr-1", journal_key(producer, "cause-1", 0))
    second = Operation(Slow("s", "a"), 2, "cause-2", "corr-2", journal_key(producer, "cause-2", 2))
    assert first.journal_key is not None
    assert second.journal_key is not None
    # What `read_latest` gives: latest value per key, tombstones dropped, in written order;
    # a snapshot chunk and another producer's record are not ours.
    records = {
        b"svc@hv-1/manifest": b"{}",
        first.journal_key: encode_operation(first),
        second.journal_key: encode_operation(second),
        b"svc@hv-2/op/cause-3/0": encode_operation(second),
    }
    resumed = pending_operations(records, producer, [Nested, Slow])
    assert resumed == [first, second]
    assert [r.journal_key for r in resumed] == [first.journal_key, second.journal_key]


def test_an_unreadable_journal_record_is_skipped() -> None:
    key = journal_key("svc", "cause-1", 0)
    records = {key: encode_operation(Operation(Slow("s", "a"), 0, "cause-1", None, key))}
    assert pending_operations(records, "svc", [Nested]) == []  # a type this release lacks
    assert pending_operations({key: b"not json"}, "svc", [Slow]) == []
