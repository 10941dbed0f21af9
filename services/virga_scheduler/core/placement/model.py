"""Value types the placement core decides with: hosts, requests, claims, server groups, ratios."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

HostState = Literal["up", "down"]
GroupPolicy = Literal["affinity", "anti-affinity"]
GroupScope = Literal["host", "rack"]


def _require_non_negative(owner: str, **amounts: int | float) -> None:
    # Capacities and requests arrive from events; a negative amount would silently create
    # phantom room, so it is refused where the value is built (the caller dead-letters it).
    for name, amount in amounts.items():
        if amount < 0:
            raise ValueError(f"{owner}: {name} must not be negative, got {amount}")


@dataclass(frozen=True, slots=True)
class Host:
    """A hypervisor host as its compute agent reports it."""

    name: str
    """Unique host name; the key everything else refers to."""
    rack: str
    """Rack the host sits in: the failure domain rack-scoped server groups reason about."""
    zone: str
    """Availability zone the host belongs to."""
    vcpus: int
    """Physical vCPUs (hardware threads) before overcommit."""
    ram_mb: int
    """Physical RAM in MB before overcommit."""
    disk_gb: int
    """Local disk in GB before overcommit."""
    traits: frozenset[str] = frozenset()
    """Capabilities requests can require, e.g. ``CUSTOM_GPU`` or ``HW_CPU_X86_AVX2``."""
    state: HostState = "up"
    """``down`` when its compute agent stopped reporting."""
    enabled: bool = True
    """``False`` when an administrator took the host out of scheduling (maintenance)."""

    def __post_init__(self) -> None:
        _require_non_negative(
            f"host {self.name}", vcpus=self.vcpus, ram_mb=self.ram_mb, disk_gb=self.disk_gb
        )


@dataclass(frozen=True, slots=True)
class PlacementRequest:
    """One instance asking for a host, with everything that constrains the choice."""

    instance_id: str
    """The instance to place; also the key of the claim it will hold."""
    tenant_id: str
    """Owner of the instance (not a constraint today; kept for logs and future quotas)."""
    vcpus: int
    """vCPUs the flavor asks for."""
    ram_mb: int
    """RAM in MB the flavor asks for."""
    disk_gb: int
    """Root disk in GB the flavor asks for."""
    availability_zone: str | None = None
    """Zone the user asked for; ``None`` lets the scheduler pick any zone."""
    server_group_id: str | None = None
    """Server group whose affinity policy the instance must honour, if any."""
    required_traits: frozenset[str] = frozenset()
    """Traits the host must have, all of them."""
    excluded_hosts: frozenset[str] = frozenset()
    """Hosts that already failed to boot this instance; a reschedule never returns there."""

    def __post_init__(self) -> None:
        _require_non_negative(
            f"instance {self.instance_id}",
            vcpus=self.vcpus,
            ram_mb=self.ram_mb,
            disk_gb=self.disk_gb,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """Resources one instance holds on one host, from scheduling until it is deleted."""

    instance_id: str
    """The instance holding the resources."""
    host: str
    """The host the resources are taken from."""
    vcpus: int
    """vCPUs held."""
    ram_mb: int
    """RAM in MB held."""
    disk_gb: int
    """Disk in GB held."""

    @classmethod
    def for_request(cls, request: PlacementRequest, host: str) -> Claim:
        """The claim a request takes once it is placed on ``host``."""
        return cls(request.instance_id, host, request.vcpus, request.ram_mb, request.disk_gb)


@dataclass(frozen=True, slots=True)
class Usage:
    """What the claims on one host add up to."""

    vcpus: int = 0
    """vCPUs claimed."""
    ram_mb: int = 0
    """RAM in MB claimed."""
    disk_gb: int = 0
    """Disk in GB claimed."""


NO_USAGE = Usage()


@dataclass(frozen=True, slots=True)
class MemberLocation:
    """Where one placed server-group member runs."""

    instance_id: str
    """The member."""
    host: str
    """Its host."""
    rack: str
    """Its host's rack."""


@dataclass(frozen=True, slots=True)
class ServerGroup:
    """Instances a user wants kept together (affinity) or apart (anti-affinity)."""

    id: str
    """Server group id."""
    policy: GroupPolicy
    """``affinity``: members share a host or rack; ``anti-affinity``: no two share one."""
    scope: GroupScope
    """What "together" means: the same ``host`` or the same ``rack``."""
    members: frozenset[str] = field(default_factory=frozenset)
    """Instance ids in the group; only those holding a claim constrain placement."""


@dataclass(frozen=True, slots=True)
class AllocationRatios:
    """How far a host's physical resources may be overcommitted.

    Defaults suit an ISP selling general-purpose VMs: vCPUs are mostly idle, so 4 virtual per
    physical thread is safe (Nova's historical 16.0 lets noisy neighbours starve each other);
    RAM is never overcommitted because swapping guests is worse than refusing them; local disk
    is not either, since thin-provisioned images that fill the disk take the whole host down.
    """

    cpu: float = 4.0
    """Virtual CPUs sold per physical vCPU."""
    ram: float = 1.0
    """RAM sold per MB of physical RAM."""
    disk: float = 1.0
    """Disk sold per GB of physical disk."""

    def __post_init__(self) -> None:
        _require_non_negative("allocation ratios", cpu=self.cpu, ram=self.ram, disk=self.disk)


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one filter refused one host, in words a user or operator can read."""

    filter: str
    """Name of the filter that refused the host, e.g. ``capacity``."""
    host: str
    """The refused host."""
    kind: str
    """Short cause shared by every host refused for the same reason, read after a count:
    "3 hosts" + " without 4 vCPU free". ``NoValidHost`` counts hosts per kind."""
    reason: str
    """Full sentence about this host, e.g. "host h3 needs 4 vCPU, 2 free of 16 (4 physical at
    ratio 4)"."""
