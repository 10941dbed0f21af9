"""The projection's record of a port, as for networks: facts per topic, status by precedence."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

PortStatus = Literal["BUILDING", "DOWN", "ACTIVE", "ERROR", "DELETING", "DELETED"]


class Port(msgspec.Struct, kw_only=True):
    """A port; a stub until its request (or, for an instance's port, its allocation)."""

    id: str
    requested: bool = False
    tenant_id: str = ""
    network_id: str = ""
    name: str = ""
    instance_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The controller's and agents' facts.
    allocated: bool = False
    mac: str | None = None
    ips: list[str] = msgspec.field(default_factory=list)
    security_groups: list[str] = msgspec.field(default_factory=list)
    groups_changed: bool = False
    """A PortSecurityGroupsChanged was folded: its groups win over a later-folded request's
    or allocation's (they are on other topics)."""
    allocation_fault: str | None = None
    host: str | None = None
    """The host it is to be plugged in on."""
    bound_host: str | None = None
    """The host whose agent reported it plugged in (PortBound), until PortUnbound."""
    binding_fault: str | None = None
    deletion_requested: bool = False
    deleted: bool = False
    deleted_at: datetime | None = None
    """Event time of its deletion (retention counts from it)."""
    floating_ips: dict[str, str] = msgspec.field(default_factory=dict)
    """Floating IP id -> its address ("" until known) of those pointed at it."""
    listed_as: tuple[str, str, datetime] | None = None
    """(tenant, network, created_at) it is listed under in the indexes, once requested."""

    @property
    def live(self) -> bool:
        """Holds (or will hold) an address of its network."""
        return not self.deleted and self.allocation_fault is None

    @property
    def status(self) -> PortStatus:
        if self.deleted:
            return "DELETED"
        if self.deletion_requested:
            return "DELETING"
        if self.allocation_fault is not None or self.binding_fault is not None:
            return "ERROR"
        if self.bound_host is not None:
            return "ACTIVE"
        return "DOWN" if self.allocated else "BUILDING"

    @property
    def fault(self) -> str | None:
        return self.allocation_fault or self.binding_fault
