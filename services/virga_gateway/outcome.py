"""What a write request decided: the events to append and how to answer once they are folded.

Pure, like the resources' `commands` modules that return it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec

from virga_gateway.state import GatewayState
from virga_runtime.service import Emit

View = Callable[[GatewayState], msgspec.Struct]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decided write: append `emits` (all or none), then answer `status` with `view`."""

    status: int
    emits: tuple[Emit, ...] = ()
    view: View | None = None
    """The response body, built from the state that already includes `emits`."""
    secret_fields: frozenset[str] = field(default_factory=frozenset)
    """Response fields never stored with an Idempotency-Key record."""
