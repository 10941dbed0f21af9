"""The projection's record of a network.

Requests come from the gateway's own topic and outcomes from `<ns>.network`, which a rebuild
reads first: the record keeps the facts of each topic apart, and its status follows from them
by precedence, never from arrival order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

NetworkStatus = Literal["BUILDING", "ACTIVE", "ERROR", "DELETING", "DELETED"]


class PoolRecord(msgspec.Struct, frozen=True):
    start: str
    end: str


class Network(msgspec.Struct, kw_only=True):
    """A network; a stub until its NetworkRequested is folded."""

    id: str
    requested: bool = False
    tenant_id: str = ""
    name: str = ""
    cidr: str = ""
    allocation_pools: list[PoolRecord] = msgspec.field(default_factory=list)
    dhcp: bool = True
    pool_size: int = 0
    """Addresses the pools hold: a port request beyond them is refused (409)."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The controller's facts.
    created: bool = False
    vni: int | None = None
    gateway_ip: str | None = None
    creation_fault: str | None = None
    deletion_requests: int = 0
    deletion_failures: int = 0
    """A deletion is pending while the requests outnumber the controller's refusals."""
    deletion_fault: str | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""
    ports: list[str] = msgspec.field(default_factory=list)
    """Ids of its ports that are neither deleted nor refused, requested ones included."""
    router_id: str | None = None
    """The router it is attached to (RouterInterfaceAdded), until detached."""
    snat_ip: str | None = None
    """The address of its pools its router's SNAT port holds, while attached."""

    @property
    def status(self) -> NetworkStatus:
        if self.deleted:
            return "DELETED"
        if self.creation_fault is not None:
            return "ERROR"
        if self.deletion_requests > self.deletion_failures:
            return "DELETING"
        return "ACTIVE" if self.created else "BUILDING"

    @property
    def fault(self) -> str | None:
        return self.creation_fault or (self.deletion_fault if self.status == "ACTIVE" else None)
