"""A tiny service for runtime tests: per-key counters that emit a CountChanged per increment.

Run as a process (`python tests/support/counter.py BOOTSTRAP NAME IN_TOPIC`) for crash tests.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from virga_eventlog import KafkaSettings, TopicSpec, ensure_topics
from virga_eventlog.topics import dead_letter_topic, snapshot_topic
from virga_events import Envelope, Event, EventRegistry
from virga_runtime import Emit, Intent, RunnerConfig, ServiceDefinition, ServiceRunner

REGISTRY = EventRegistry()


@REGISTRY.register("Incremented")
@dataclass(frozen=True, slots=True, kw_only=True)
class Incremented(Event):
    key: str
    amount: int


@REGISTRY.register("CountChanged")
@dataclass(frozen=True, slots=True, kw_only=True)
class CountChanged(Event):
    key: str
    total: int


Totals = dict[str, int]


def evolve(state: Totals, envelope: Envelope) -> Totals:
    match envelope.payload:
        case Incremented(key=key, amount=amount):
            state[key] = state.get(key, 0) + amount
    return state


def decide(state: Totals, envelope: Envelope) -> Sequence[Intent]:
    match envelope.payload:
        case Incremented(amount=0):
            return ()  # no count changed: nothing to say
        case Incremented(key=key):
            return [Emit(CountChanged(key=key, total=state[key]), key, None)]
    return ()


def definition(name: str, in_topic: str) -> ServiceDefinition[Totals]:
    return ServiceDefinition(
        name=name,
        input_topics=(in_topic,),
        output_topic=f"{name}.out",
        initial_state=dict,
        evolve=evolve,
        decide=decide,
        snapshot=lambda state: state,
        restore=lambda data: dict(data),
        registry=REGISTRY,
    )


async def create_topics(settings: KafkaSettings, name: str, in_topic: str) -> None:
    await ensure_topics(
        settings,
        [
            TopicSpec(in_topic, 4),
            TopicSpec(f"{name}.out", 4),
            TopicSpec(snapshot_topic(name), 1, compacted=True),
            TopicSpec(dead_letter_topic(name), 1),
        ],
    )


def expected_totals(increments: list[tuple[str, int]]) -> Totals:
    totals: Totals = {}
    for key, amount in increments:
        totals[key] = totals.get(key, 0) + amount
    return totals


async def _main(argv: list[str]) -> None:
    bootstrap, name, in_topic = argv[:3]
    snapshot_every = int(argv[3]) if len(argv) > 3 else 1000
    http_port = int(argv[4]) if len(argv) > 4 else None
    runner = ServiceRunner(
        definition(name, in_topic),
        KafkaSettings(bootstrap_servers=bootstrap),
        RunnerConfig(
            snapshot_every_events=snapshot_every, max_batch_records=50, http_port=http_port
        ),
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, runner.request_stop)
    await runner.run()


def snapshot_state(data: Any) -> Totals:
    return {str(k): int(v) for k, v in data.items()}


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1:]))
