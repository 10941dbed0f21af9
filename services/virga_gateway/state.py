"""The gateway's fold: `evolve(state, event)` over `<ns>.api`, `<ns>.scheduler`, `<ns>.compute`.

Pure: no I/O, no clock. A rebuild reads the inputs before the gateway's own topic, and each
topic's partitions in no set order, so every handler accepts an aggregate's facts in any order
across topics (stubs stand in for what is not known yet). Nothing is refused: the gateway only
projects, and its own requests were validated before they were written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import msgspec

from virga_events import Envelope, Event
from virga_events.catalog import api
from virga_gateway import fold_billing, fold_hosts, fold_instances, fold_networks, fold_storage
from virga_gateway.model import (
    IDEMPOTENCY_TTL_SECONDS,
    GatewayState,
    IdempotencyRecord,
    ServerGroup,
    Tenant,
    Token,
)

__all__ = ["GatewayState", "evolve", "restore", "snapshot"]


def evolve(state: GatewayState, envelope: Envelope) -> GatewayState:
    """Fold one event; types the gateway does not project are ignored."""
    kind = type(envelope.payload)
    handler = _HANDLERS.get(kind)
    if handler is not None:
        handler(state, envelope)
    if kind in fold_billing.BILLED_EVENTS:
        fold_billing.fold_billing(state, envelope)
    if kind in fold_instances.HISTORY_EVENTS:
        fold_instances.record_history(state, envelope)
    elif kind in fold_instances.BUILD_FACTS:
        instance_id = fold_instances.build_fact_instance(envelope)
        if instance_id is not None:
            fold_instances.record_history(state, envelope, instance_id)
    return state


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(GatewayState)


def snapshot(state: GatewayState) -> str:
    """The projection as one JSON string (msgspec encodes its Structs in C)."""
    return _ENCODER.encode(state).decode()


def restore(value: Any) -> GatewayState:
    return _DECODER.decode(value)


def _tenant_created(state: GatewayState, env: Envelope) -> None:
    event: api.TenantCreated = env.payload
    state.tenants[env.aggregate_id] = Tenant(env.aggregate_id, event.name, env.occurred_at)


def _token_issued(state: GatewayState, env: Envelope) -> None:
    event: api.TokenIssued = env.payload
    token = Token(env.aggregate_id, event.token_sha256, event.role, env.tenant_id, event.expires_at)
    state.tokens[token.id] = token
    state.token_ids_by_sha256[token.sha256] = token.id


def _token_revoked(state: GatewayState, env: Envelope) -> None:
    token = state.tokens.get(env.aggregate_id)
    if token is not None:
        token.revoked = True


def _flavor_created(state: GatewayState, env: Envelope) -> None:
    event: api.FlavorCreated = env.payload
    state.flavors[event.flavor.name] = event.flavor


def _server_group_created(state: GatewayState, env: Envelope) -> None:
    event: api.ServerGroupCreated = env.payload
    state.server_groups[env.aggregate_id] = ServerGroup(
        env.aggregate_id,
        event.name,
        event.policy,
        event.scope,
        env.tenant_id or "",
        env.occurred_at,
    )


def _idempotent_request_recorded(state: GatewayState, env: Envelope) -> None:
    event: api.IdempotentRequestRecorded = env.payload
    records = state.idempotency
    # Keys are kept a day; insertion order is (nearly) time order, so expired keys are in front.
    horizon = env.occurred_at - timedelta(seconds=IDEMPOTENCY_TTL_SECONDS)
    while records:
        oldest = next(iter(records))
        if records[oldest].recorded_at >= horizon:
            break
        del records[oldest]
    records[env.aggregate_id] = IdempotencyRecord(
        event.method_path, event.request_sha256, event.status, event.body, env.occurred_at
    )


_HANDLERS: dict[type[Event], Callable[[GatewayState, Envelope], None]] = {
    api.TenantCreated: _tenant_created,
    api.TokenIssued: _token_issued,
    api.TokenRevoked: _token_revoked,
    api.FlavorCreated: _flavor_created,
    api.ServerGroupCreated: _server_group_created,
    api.IdempotentRequestRecorded: _idempotent_request_recorded,
    **fold_instances.HANDLERS,
    **fold_hosts.HANDLERS,
    **fold_networks.HANDLERS,
    **fold_storage.HANDLERS,
}
