"""The projection's record of a router: the request, the controller's external address and
interfaces, kept apart; status by precedence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

RouterStatus = Literal["BUILDING", "ACTIVE", "ERROR", "DELETING", "DELETED"]


class Router(msgspec.Struct, kw_only=True):
    """A router; a stub until its request is folded."""

    id: str
    requested: bool = False
    tenant_id: str = ""
    name: str = ""
    external_network_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    external_ip: str | None = None
    creation_fault: str | None = None
    interfaces: dict[str, str] = msgspec.field(default_factory=dict)
    """Network id -> the gateway address the router answers on it."""
    pending: dict[str, bool] = msgspec.field(default_factory=dict)
    """Network id -> True (being attached) or False (being detached), until the outcome."""
    interface_fault: str | None = None
    """Why the controller refused the latest interface change."""
    deletion_requests: int = 0
    deletion_failures: int = 0
    deletion_fault: str | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""

    @property
    def status(self) -> RouterStatus:
        if self.deleted:
            return "DELETED"
        if self.creation_fault is not None:
            return "ERROR"
        if self.deletion_requests > self.deletion_failures:
            return "DELETING"
        return "ACTIVE" if self.external_ip is not None else "BUILDING"

    @property
    def live(self) -> bool:
        """Holds (or will hold) an address of its external network."""
        return self.requested and not self.deleted and self.creation_fault is None

    @property
    def fault(self) -> str | None:
        if self.creation_fault is not None:
            return self.creation_fault
        return self.interface_fault or (self.deletion_fault if self.status == "ACTIVE" else None)
