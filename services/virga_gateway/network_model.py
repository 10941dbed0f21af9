"""The projection's records of networks, ports and security groups.

Requests come from the gateway's own topic and outcomes from `<ns>.network`, which a rebuild
reads first: each record keeps the facts of each topic apart, and its status follows from them
by precedence, never from arrival order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

NetworkStatus = Literal["BUILDING", "ACTIVE", "ERROR", "DELETING", "DELETED"]
PortStatus = Literal["BUILDING", "DOWN", "ACTIVE", "ERROR", "DELETING", "DELETED"]


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
    ports: list[str] = msgspec.field(default_factory=list)
    """Ids of its ports that are neither deleted nor refused, requested ones included."""

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
    allocation_fault: str | None = None
    host: str | None = None
    """The host it is to be plugged in on."""
    bound_host: str | None = None
    """The host whose agent reported it plugged in (PortBound), until PortUnbound."""
    binding_fault: str | None = None
    deletion_requested: bool = False
    deleted: bool = False

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


class RuleRecord(msgspec.Struct, frozen=True, kw_only=True):
    direction: Literal["ingress", "egress"]
    ethertype: Literal["IPv4", "IPv6"]
    protocol: Literal["any", "tcp", "udp", "icmp", "icmpv6"]
    port_min: int | None = None
    port_max: int | None = None
    remote_cidr: str | None = None
    remote_group: str | None = None


class SecurityGroup(msgspec.Struct, kw_only=True):
    id: str
    tenant_id: str
    name: str
    rules: list[RuleRecord]
    created_at: datetime
