"""Runs the side effects of one batch: serially per key, concurrently across keys."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from virga_events import Envelope
from virga_runtime.service import EffectHandler, Emit

PlannedEffect = tuple[Envelope | None, int, Any]
"""(the event that caused it, its index among that event's intents, the effect)."""

EffectOutcome = tuple[Envelope | None, str, Emit]
"""(cause, a stable index for the derived event id, the event that records the outcome)."""


async def run_effects(
    handlers: Mapping[type[Any], EffectHandler], planned: Sequence[PlannedEffect]
) -> list[EffectOutcome]:
    """Run `planned` and return their outcome events in planned order.

    Effects on one key (an instance, a volume) keep their order, as the agent must operate on
    an instance serially; different keys overlap, so one slow boot does not hold the batch.
    """
    if not planned:
        return []
    for _, _, effect in planned:
        if type(effect) not in handlers:
            raise LookupError(f"no handler for effect {type(effect).__name__}")
    by_key: dict[str, list[int]] = {}
    for position, (_, _, effect) in enumerate(planned):
        by_key.setdefault(effect.key, []).append(position)
    results: list[Sequence[Emit]] = [() for _ in planned]

    async def run_key(positions: list[int]) -> None:
        for position in positions:
            effect = planned[position][2]
            results[position] = await handlers[type(effect)](effect)

    await asyncio.gather(*(run_key(positions) for positions in by_key.values()))
    outcomes: list[EffectOutcome] = []
    for (cause, intent_index, _), emits in zip(planned, results, strict=True):
        outcomes.extend((cause, f"effect-{intent_index}-{j}", emit) for j, emit in enumerate(emits))
    return outcomes
