"""How flavor facts fold into the projection."""

from __future__ import annotations

from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_events.catalog import api
from virga_runtime.folding import Folds

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

folds: Folds[GatewayState] = Folds()


@folds.on(api.FlavorCreated)
def _flavor_created(state: GatewayState, env: Envelope, event: api.FlavorCreated) -> None:
    state.flavors[event.flavor.name] = event.flavor
