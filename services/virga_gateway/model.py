"""The records of the gateway's projection: tenants, tokens, instances, server groups, hosts.

msgspec Structs, so the whole projection snapshots to JSON and back in one call. Instances and
hosts keep each topic's facts apart because a rebuild reads the inputs before the gateway's
own topic: their status is derived from those facts by precedence, never from arrival order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from virga_events.catalog import Flavor
from virga_gateway.network_model import Network, Port, SecurityGroup
from virga_gateway.storage_model import Image, Volume
from virga_rating.state import BillingState

InstanceStatus = Literal["BUILDING", "RUNNING", "STOPPED", "ERROR", "DELETING", "DELETED"]
INSTANCE_STATUSES: tuple[InstanceStatus, ...] = (
    "BUILDING",
    "RUNNING",
    "STOPPED",
    "ERROR",
    "DELETING",
    "DELETED",
)
Role = Literal["admin", "tenant"]

HISTORY_LIMIT = 1000
"""Events kept per instance for `GET /v1/instances/{id}/events`; the log keeps them all."""

DEFAULT_FLAVORS = (
    Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1),
    Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20),
    Flavor(name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40),
    Flavor(name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80),
)


class Tenant(msgspec.Struct):
    id: str
    name: str
    created_at: datetime


class Token(msgspec.Struct):
    id: str
    sha256: str
    role: Role
    tenant_id: str | None
    """The tenant a tenant token acts for; None for admin tokens."""
    expires_at: datetime | None = None
    revoked: bool = False


class Resources(msgspec.Struct):
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0

    def add(self, flavor: Flavor, sign: int = 1) -> None:
        self.vcpus += sign * flavor.vcpus
        self.ram_mb += sign * flavor.ram_mb
        self.disk_gb += sign * flavor.disk_gb


class Ratios(msgspec.Struct, frozen=True):
    cpu: float
    ram: float
    disk: float


class ServerGroup(msgspec.Struct):
    id: str
    name: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]
    tenant_id: str
    created_at: datetime


class HistoryEntry(msgspec.Struct, frozen=True):
    """One event about an instance, as `GET /v1/instances/{id}/events` shows it."""

    event_id: str
    type: str
    producer: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]


class InstanceAddress(msgspec.Struct, frozen=True, kw_only=True):
    """An address of an instance's port, from the network controller's PortAllocated."""

    network: str
    ip: str
    mac: str


class Instance(msgspec.Struct, kw_only=True):
    """An instance as the gateway knows it; a stub until its InstanceRequested is folded."""

    id: str
    requested: bool = False
    name: str = ""
    tenant_id: str = ""
    flavor: Flavor | None = None
    image: str | None = None
    network: str | None = None
    server_group: str | None = None
    availability_zone: str | None = None
    required_traits: tuple[str, ...] = ()
    delete_on_termination: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # Facts per topic; within one topic an instance's events arrive in order.
    deletion_requested: bool = False
    placed_on: str | None = None
    """Host of the latest placement (scheduler); None after scheduling failed."""
    scheduling_fault: str | None = None
    compute_status: Literal["RUNNING", "STOPPED"] | None = None
    compute_host: str | None = None
    compute_fault: str | None = None
    """The last failure the compute agents reported since their last success."""
    deleted: bool = False
    history: list[HistoryEntry] = msgspec.field(default_factory=list)
    addresses: list[InstanceAddress] = msgspec.field(default_factory=list)
    """Its port's addresses (network controller), until the port is deleted."""
    attached_volumes: dict[str, str] = msgspec.field(default_factory=dict)
    """Volume id -> the device the guest sees, as its compute agent attached them."""

    @property
    def status(self) -> InstanceStatus:
        # Precedence stands in for order: deletion ends everything, a deletion request
        # overrides what the agent last did, the scheduler giving up is final, and otherwise
        # the compute agent's last report tells; before any report the instance is building.
        if self.deleted:
            return "DELETED"
        if self.deletion_requested:
            return "DELETING"
        if self.scheduling_fault is not None:
            return "ERROR"
        return self.compute_status or "BUILDING"

    @property
    def fault(self) -> str | None:
        if self.status == "ERROR":
            return self.scheduling_fault
        return self.compute_fault

    @property
    def host(self) -> str | None:
        return self.placed_on or (None if self.scheduling_fault else self.compute_host)


class Host(msgspec.Struct, kw_only=True):
    """A compute host; a stub (not listed) until its agent's HostRegistered is folded."""

    name: str
    registered: bool = False
    rack: str = ""
    zone: str = ""
    capacity: Resources = msgspec.field(default_factory=Resources)
    traits: tuple[str, ...] = ()
    allocated: Resources = msgspec.field(default_factory=Resources)
    """Sum of the flavors of the claims the scheduler holds on this host."""
    state: Literal["up", "down"] = "up"
    state_at: datetime | None = None
    """Event time of the fact `state` comes from: the newest of them wins, in any order."""
    enabled: bool = True
    disabled_reason: str = ""
    last_heartbeat_at: datetime | None = None


class IdempotencyRecord(msgspec.Struct, frozen=True):
    """The first response to a POST with an Idempotency-Key, replayed to its retries."""

    method_path: str
    request_sha256: str
    status: int
    body: str
    recorded_at: datetime


IDEMPOTENCY_TTL_SECONDS = 24 * 3600
"""How long an Idempotency-Key is remembered (as Stripe and the IETF draft suggest)."""


OrderKey = tuple[datetime, str]
"""(created_at, id): the order instances are listed and paginated in."""


class GatewayState(msgspec.Struct, kw_only=True):
    """The whole projection; `state.evolve` folds events into it."""

    tenants: dict[str, Tenant] = msgspec.field(default_factory=dict)
    tokens: dict[str, Token] = msgspec.field(default_factory=dict)
    token_ids_by_sha256: dict[str, str] = msgspec.field(default_factory=dict)
    flavors: dict[str, Flavor] = msgspec.field(
        default_factory=lambda: {f.name: f for f in DEFAULT_FLAVORS}
    )
    instances: dict[str, Instance] = msgspec.field(default_factory=dict)
    instance_order: list[OrderKey] = msgspec.field(default_factory=list)
    """Every requested instance, sorted."""
    tenant_instance_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    """The same, per tenant: a tenant's listing never walks other tenants' instances."""
    server_groups: dict[str, ServerGroup] = msgspec.field(default_factory=dict)
    group_members: dict[str, list[str]] = msgspec.field(default_factory=dict)
    hosts: dict[str, Host] = msgspec.field(default_factory=dict)
    claims: dict[str, dict[str, Flavor]] = msgspec.field(default_factory=dict)
    """instance id -> host -> the flavor claimed there."""
    allocation_ratios: dict[str, Ratios] = msgspec.field(default_factory=dict)
    """Host name (or ``*`` for every host) -> the ratios an admin set."""
    idempotency: dict[str, IdempotencyRecord] = msgspec.field(default_factory=dict)
    """Idempotency aggregate id (principal + key) -> first response, oldest first."""
    volumes: dict[str, Volume] = msgspec.field(default_factory=dict)
    volume_order: list[OrderKey] = msgspec.field(default_factory=list)
    """Every listed volume, sorted by (created_at, id)."""
    tenant_volume_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    snapshot_volumes: dict[str, str] = msgspec.field(default_factory=dict)
    """Volume snapshot id -> the volume it was taken of."""
    images: dict[str, Image] = msgspec.field(default_factory=dict)
    billing: BillingState = msgspec.field(default_factory=BillingState)
    """Usage, prices and invoices, folded by billing's own core (`fold_billing`)."""
    networks: dict[str, Network] = msgspec.field(default_factory=dict)
    ports: dict[str, Port] = msgspec.field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = msgspec.field(default_factory=dict)
    """Security groups tenants created; each tenant's default group is implicit."""
