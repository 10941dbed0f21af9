"""The projection's record of an external network: requests and controller facts kept apart,
status by precedence, as for networks."""

from __future__ import annotations

from datetime import datetime

import msgspec

from virga_gateway.networks.model import NetworkStatus, PoolRecord


class ExternalNetwork(msgspec.Struct, kw_only=True):
    """An external network; a stub until its ExternalNetworkRequested is folded."""

    id: str
    requested: bool = False
    name: str = ""
    cidr: str = ""
    gateway_ip: str = ""
    allocation_pools: list[PoolRecord] = msgspec.field(default_factory=list)
    host_interface: str = ""
    pool_size: int = 0
    """Addresses its pools hold: a request beyond them is refused (409)."""
    created_at: datetime | None = None
    updated_at: datetime | None = None
    created: bool = False
    creation_fault: str | None = None
    deletion_requests: int = 0
    deletion_failures: int = 0
    deletion_fault: str | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""
    floating_ips: list[str] = msgspec.field(default_factory=list)
    """Ids of the floating IPs holding (or about to hold) one of its addresses."""
    routers: list[str] = msgspec.field(default_factory=list)
    """Ids of the routers holding (or about to hold) one of its addresses."""

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
