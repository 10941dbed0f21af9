"""How keypair facts fold into the projection."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway.cursor import remove_key
from virga_gateway.keypairs.model import Keypair
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(api.KeypairImported)
def _imported(state: GatewayState, env: Envelope, event: api.KeypairImported) -> None:
    if env.aggregate_id in state.keypairs:
        return  # a duplicate
    tenant_id = env.tenant_id or ""
    key = (env.occurred_at, env.aggregate_id)
    bisect.insort(state.tenant_keypair_order.setdefault(tenant_id, []), key)
    state.keypairs[env.aggregate_id] = Keypair(
        id=env.aggregate_id,
        name=event.name,
        tenant_id=tenant_id,
        public_key=event.public_key,
        fingerprint=event.fingerprint,
        type=event.type,
        created_at=env.occurred_at,
    )


@folds.on(api.KeypairDeleted)
def _deleted(state: GatewayState, env: Envelope, event: api.KeypairDeleted) -> None:
    keypair = state.keypairs.pop(env.aggregate_id, None)
    if keypair is not None:
        order = state.tenant_keypair_order.get(keypair.tenant_id, [])
        remove_key(order, (keypair.created_at, keypair.id))
        if not order:
            state.tenant_keypair_order.pop(keypair.tenant_id, None)
