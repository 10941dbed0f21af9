"""The projection as it will be once a request's events are folded, computed beforehand.

An idempotent POST stores its response with its events, in one transaction: the response is
rendered from a scratch state holding copies of just the aggregates the events touch, folded
with the same `evolve` (and event time) the real projection will use.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from virga_events import new_event
from virga_gateway.state import GatewayState, evolve
from virga_runtime.service import Emit


def preview(
    state: GatewayState, emits: Sequence[Emit], occurred_at: datetime, correlation_id: str
) -> GatewayState:
    """A state in which `emits` are folded; `state` itself is left untouched."""
    if not emits:
        return state
    scratch = state.preview_copy(emit.aggregate_id for emit in emits)
    for emit in emits:
        envelope = new_event(
            emit.payload,
            aggregate_id=emit.aggregate_id,
            tenant_id=emit.tenant_id,
            producer="gateway",
            correlation_id=correlation_id,
            occurred_at=occurred_at,
        )
        scratch = evolve(scratch, envelope)
    return scratch
