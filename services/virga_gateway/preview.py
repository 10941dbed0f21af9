"""The projection as it will be once a request's events are folded, computed beforehand.

An idempotent POST stores its response with its events, in one transaction: the response is
rendered from a scratch state holding copies of just the aggregates the events touch, folded
with the same `evolve` (and event time) the real projection will use.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

import msgspec

from virga_events import new_event
from virga_gateway.model import GatewayState
from virga_gateway.state import evolve
from virga_runtime.service import Emit


def preview(
    state: GatewayState, emits: Sequence[Emit], occurred_at: datetime, correlation_id: str
) -> GatewayState:
    """A state in which `emits` are folded; `state` itself is left untouched."""
    if not emits:
        return state
    touched = {emit.aggregate_id for emit in emits}
    scratch = GatewayState(
        # Records in these tables are replaced, never mutated, by evolve: sharing them is safe.
        tenants=dict(state.tenants),
        flavors=dict(state.flavors),
        server_groups=dict(state.server_groups),
        allocation_ratios=dict(state.allocation_ratios),
        # These are mutated in place: copy the touched ones (history is read, not needed).
        tokens={k: copy.copy(state.tokens[k]) for k in touched if k in state.tokens},
        hosts={k: copy.deepcopy(state.hosts[k]) for k in touched if k in state.hosts},
        instances={
            k: msgspec.structs.replace(state.instances[k], history=[])
            for k in touched
            if k in state.instances
        },
        networks={k: copy.deepcopy(state.networks[k]) for k in touched if k in state.networks},
        ports={k: copy.deepcopy(state.ports[k]) for k in touched if k in state.ports},
        security_groups=dict(state.security_groups),
        volumes={k: copy.deepcopy(state.volumes[k]) for k in touched if k in state.volumes},
        images={k: copy.deepcopy(state.images[k]) for k in touched if k in state.images},
    )
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
