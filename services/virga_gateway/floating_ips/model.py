"""The projection's record of a floating IP: the request, the controller's allocation and its
association, kept apart; status by precedence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

CONFIRMATIONS_KEPT = 4
"""Confirmations a floating IP remembers: the current acceptance's, and a few folded before
their acceptance (a rebuild reading a host's topic first)."""

FloatingIpStatus = Literal["BUILDING", "DOWN", "ACTIVE", "ERROR", "DELETING", "DELETED"]


class FloatingIp(msgspec.Struct, kw_only=True):
    """A floating IP; a stub until its request is folded."""

    id: str
    requested: bool = False
    tenant_id: str = ""
    external_network_id: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    ip: str | None = None
    allocation_fault: str | None = None
    port_id: str | None = None
    """The port it points at (FloatingIpAssociationAccepted), until dissociated."""
    fixed_ip: str | None = None
    host: str | None = None
    """The port's host when the controller accepted the association: the one to confirm it."""
    acceptance: str | None = None
    """The event id of the latest FloatingIpAssociationAccepted; None in snapshots from before
    confirmations, whose associations were done at once."""
    confirmations: dict[str, str | None] = msgspec.field(default_factory=dict)
    """Acceptance -> the host that confirmed it (FloatingIpAssociated), None once unplumbed
    there: kept by acceptance, since a host's topic and the controller's are folded in no set
    order (the newest CONFIRMATIONS_KEPT)."""
    association_fault: str | None = None
    """Why the controller refused the latest association (cleared by the next request)."""
    release_requested: bool = False
    released: bool = False
    released_at: datetime | None = None
    """Event time of its release (retention counts from it)."""

    @property
    def status(self) -> FloatingIpStatus:
        if self.released:
            return "DELETED"
        if self.release_requested:
            return "DELETING"
        if self.allocation_fault is not None:
            return "ERROR"
        if self.ip is None:
            return "BUILDING"
        if self.port_id is None:
            return "DOWN"
        if self.acceptance is None:
            return "ACTIVE"
        confirmed = self.confirmations.get(self.acceptance)
        return "ACTIVE" if confirmed is not None and confirmed == self.host else "DOWN"

    @property
    def live(self) -> bool:
        """Holds (or will hold) an address of its external network."""
        return self.requested and not self.released and self.allocation_fault is None
