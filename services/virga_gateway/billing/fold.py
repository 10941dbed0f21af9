"""The billing facts the gateway projects, folded by billing's own `evolve` (`virga_rating`):
lifecycle events, samples, volumes, prices and invoices, what usage and invoices need; deleted
resources' history leaves once it lies in closed months (`billing.retention`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from virga_events import Envelope
from virga_gateway.billing import retention
from virga_rating import fold
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


def _billed(state: GatewayState, envelope: Envelope, event: Any) -> None:
    if retention.is_pruned(state.usage_retention, envelope.aggregate_id):
        return  # a late fact about a pruned record must not make a new one
    fold.evolve(state.billing, envelope)
    retention.deleted(state.usage_retention, state.billing, envelope)


for _kind in fold.FOLDED_TYPES:
    folds.add(_kind, _billed)
