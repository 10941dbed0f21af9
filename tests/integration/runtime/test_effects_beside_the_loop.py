"""Effects run beside the decide loop, against the real broker: a slow one holds neither the
ticks nor the other keys, and one cut off by a crash is carried out once after the restart."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from tests.integration.runtime.test_counter_service import wait_for
from tests.support import counter
from tests.support.kafka import produce_events, read_events

from virga_eventlog import KafkaSettings
from virga_events import Envelope, new_event
from virga_runtime import Emit, Intent, RunnerConfig, ServiceDefinition, ServiceRunner

pytestmark = pytest.mark.kafka

SLOW = 99
"""An increment by this amount is a slow effect: it waits for `Gate.open`."""


@dataclass(frozen=True, slots=True)
class Work:
    name: str
    amount: int

    @property
    def key(self) -> str:
        return self.name


@dataclass
class Seen:
    """Outcomes (CountChanged totals) per key, and the ticks, as folded from our own topic."""

    outcomes: dict[str, list[int]] = field(default_factory=dict)
    ticks: int = 0


class Gate:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.slow_began = asyncio.Event()
        self.runs: list[tuple[str, int]] = []

    async def work(self, effect: Work) -> Sequence[Emit]:
        self.runs.append((effect.name, effect.amount))
        if effect.amount == SLOW:
            self.slow_began.set()
            await self.open.wait()
        return [Emit(counter.CountChanged(key=effect.name, total=effect.amount), effect.name, None)]


def evolve(state: Seen, envelope: Envelope) -> Seen:
    match envelope.payload:
        case counter.CountChanged(key="tick"):
            state.ticks += 1
        case counter.CountChanged(key=key, total=total):
            state.outcomes.setdefault(key, []).append(total)
    return state


def decide(state: Seen, envelope: Envelope) -> Sequence[Intent]:
    match envelope.payload:
        case counter.Incremented(key=key, amount=amount):
            return [Work(key, amount)]
    return ()


def definition(name: str, in_topic: str, gate: Gate) -> ServiceDefinition[Seen]:
    return ServiceDefinition(
        name=name,
        input_topics=(in_topic,),
        output_topic=f"{name}.out",
        initial_state=Seen,
        evolve=evolve,
        decide=decide,
        effects={Work: gate.work},
        tick=lambda state, now: [Emit(counter.CountChanged(key="tick", total=0), "tick", None)],
        tick_seconds=0.2,
        snapshot=lambda state: {"outcomes": state.outcomes, "ticks": state.ticks},
        restore=lambda data: Seen(dict(data["outcomes"]), data["ticks"]),
        registry=counter.REGISTRY,
    )


async def start(
    bootstrap: str, name: str, in_topic: str, gate: Gate
) -> tuple[ServiceRunner[Seen], asyncio.Task[None]]:
    runner = ServiceRunner(
        definition(name, in_topic, gate), KafkaSettings(bootstrap_servers=bootstrap), RunnerConfig()
    )
    await runner.start()
    return runner, asyncio.create_task(runner.serve())


def increment(key: str, amount: int) -> Envelope:
    return new_event(
        counter.Incremented(key=key, amount=amount), aggregate_id=key, tenant_id=None, producer="t"
    )


async def test_a_slow_effect_holds_neither_ticks_nor_other_keys_and_survives_a_crash(
    kafka_bootstrap: str,
) -> None:
    name = f"effects-{uuid.uuid4().hex[:8]}"
    in_topic = f"{name}.in"
    await counter.create_topics(KafkaSettings(bootstrap_servers=kafka_bootstrap), name, in_topic)
    inputs = [increment("a", SLOW), increment("a", 1), increment("b", 2)]
    gate = Gate()
    runner, task = await start(kafka_bootstrap, name, in_topic, gate)
    try:
        await produce_events(kafka_bootstrap, in_topic, inputs)
        await asyncio.wait_for(gate.slow_began.wait(), 60)
        await wait_for(lambda: runner.state.outcomes.get("b") == [2])  # another key, meanwhile
        ticks = runner.state.ticks
        await wait_for(lambda: runner.state.ticks >= ticks + 3)  # the ticks go on
        assert "a" not in runner.state.outcomes  # the slow one still runs...
        assert gate.runs == [("a", SLOW), ("b", 2)]  # ...and the next on its key waits for it
    finally:
        runner.request_stop()
        await task
        await runner.close(snapshot=False)  # cut off mid-effect, as a crash would

    gate = Gate()
    gate.open.set()
    runner, task = await start(kafka_bootstrap, name, in_topic, gate)
    try:
        await wait_for(lambda: runner.state.outcomes.get("a") == [SLOW, 1])
        assert gate.runs == [("a", SLOW), ("a", 1)]  # carried out again, in their order
    finally:
        runner.request_stop()
        await task
        await runner.close()

    outputs = await read_events(kafka_bootstrap, f"{name}.out", counter.REGISTRY)
    outcomes = [o for o in outputs if o.aggregate_id != "tick"]
    # Each input's outcome exactly once, caused by it, in order per key.
    assert sorted((o.aggregate_id, o.payload.total) for o in outcomes) == [
        ("a", 1),
        ("a", SLOW),
        ("b", 2),
    ]
    assert {o.causation_id for o in outcomes} == {i.event_id for i in inputs}
    assert [o.payload.total for o in outcomes if o.aggregate_id == "a"] == [SLOW, 1]
