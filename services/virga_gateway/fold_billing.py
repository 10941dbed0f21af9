"""The billing facts the gateway projects, folded by billing's own `evolve` (`virga_rating`)."""

from __future__ import annotations

from virga_events import Envelope
from virga_gateway.model import GatewayState
from virga_rating import fold

BILLED_EVENTS = fold.FOLDED_TYPES
"""Lifecycle events, samples, volumes, prices and invoices: what usage and invoices need."""


def fold_billing(state: GatewayState, envelope: Envelope) -> None:
    fold.evolve(state.billing, envelope)
