"""Facts the gateway writes to `virga.api`: what users and admins asked for, once validated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from virga_events.catalog.common import Flavor, PlannedMove
from virga_events.registry import Event, event


@event("TenantCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class TenantCreated(Event):
    """A tenant exists (aggregate: tenant id)."""

    name: str


@event("TokenIssued")
@dataclass(frozen=True, slots=True, kw_only=True)
class TokenIssued(Event):
    """A bearer token was issued (aggregate: token id). Only its sha256 is ever stored."""

    token_sha256: str
    role: Literal["admin", "tenant"]
    expires_at: datetime | None = None


@event("TokenRevoked")
@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevoked(Event):
    """A token no longer authenticates (aggregate: token id)."""


@event("TenantDisabled")
@dataclass(frozen=True, slots=True, kw_only=True)
class TenantDisabled(Event):
    """An admin disabled a tenant (aggregate: tenant id): none of its tokens authenticates
    until it is enabled again; its resources stay."""

    reason: str = ""


@event("TenantEnabled")
@dataclass(frozen=True, slots=True, kw_only=True)
class TenantEnabled(Event):
    """An admin enabled a disabled tenant again (aggregate: tenant id)."""


@event("TenantDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class TenantDeleted(Event):
    """An admin deleted a tenant that owned nothing any more (aggregate: tenant id): none of
    its tokens authenticates again, its quota overrides are dropped, its name is free; its
    history stays in the log."""


@event("FlavorCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class FlavorCreated(Event):
    """An admin added a flavor (aggregate: flavor name)."""

    flavor: Flavor


@event("ServerGroupCreated")
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerGroupCreated(Event):
    """A placement group (aggregate: server group id)."""

    name: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]


InstanceRestartPolicy = Literal["never", "on-crash", "always"]
"""What the compute agent does when an instance's guest stops without Virga asking:
`never` leaves it stopped; `on-crash` starts it again after a crash (not after the guest
powered itself off or was destroyed by hand); `always` starts it again after any such stop."""

RESTART_POLICIES: tuple[InstanceRestartPolicy, ...] = ("never", "on-crash", "always")


@event("ServerGroupDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class ServerGroupDeleted(Event):
    """A tenant deleted a server group no instance is in (aggregate: server group id)."""


@event("KeypairImported")
@dataclass(frozen=True, slots=True, kw_only=True)
class KeypairImported(Event):
    """A tenant imported an SSH public key under a name of its own (aggregate: the tenant id
    and the name, ``<tenant id>/<name>``). The key was parsed and checked by the gateway."""

    name: str
    public_key: str
    """One OpenSSH public key line, ``<type> <base64> [comment]``, without control characters."""
    fingerprint: str
    """``SHA256:<unpadded base64>`` of the key's wire-format blob, as ``ssh-keygen -l`` shows."""
    type: str
    """The OpenSSH key type: ``ssh-ed25519``, ``ssh-rsa`` or ``ecdsa-sha2-nistp256/384/521``."""


@event("KeypairDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class KeypairDeleted(Event):
    """A tenant deleted a keypair (aggregate: ``<tenant id>/<name>``); instances requested with
    it keep their copy of the key, and the name is free again."""


@event("InstanceRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRequested(Event):
    """A tenant asked for an instance (aggregate: instance id)."""

    name: str
    flavor: Flavor
    image: str | None = None
    network: str | None = None
    server_group: str | None = None
    availability_zone: str | None = None
    required_traits: tuple[str, ...] = ()
    delete_on_termination: bool = True
    restart_policy: InstanceRestartPolicy = "never"
    hostname: str | None = None
    """The guest's host name (the instance name, sanitised); None in events before it."""
    key_name: str | None = None
    """The tenant's keypair named at request time, if any."""
    public_keys: tuple[str, ...] = ()
    """That keypair's OpenSSH public key, copied: deleting the keypair later changes nothing
    for this instance (as in OpenStack). The metadata service and config drive serve it."""
    user_data: str | None = None
    """The tenant's user data, base64 as sent (up to 64 KiB decoded)."""
    config_drive: bool = False
    """Attach a config drive (ISO 9660, label `config-2`, the OpenStack layout)."""
    security_groups: tuple[str, ...] = ()
    """The security groups of its port (with `network`); empty: the tenant's default group."""


@event("InstanceActionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceActionRequested(Event):
    """A tenant asked to start, stop or reboot an instance (aggregate: instance id)."""

    action: Literal["start", "stop", "reboot"]


@event("LiveMigrationRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class LiveMigrationRequested(Event):
    """An administrator asked to move a running instance to another host while it runs
    (aggregate: instance id); the scheduler runs it as a flow whose id is `flow_id`."""

    host: str | None = None
    """The destination; None: the scheduler picks one by the same filters as a placement."""
    flow_id: str | None = None
    """The flow's id, chosen by the gateway (it answers it to the caller); None: this event's
    id."""


@event("EvacuationRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class EvacuationRequested(Event):
    """An administrator asked to rebuild an instance whose host is down on another host, from
    its RBD disks (aggregate: instance id); the scheduler runs it as the flow `flow_id`."""

    host: str | None = None
    """The destination; None: the scheduler picks one by the same filters as a placement."""
    flow_id: str | None = None
    """The flow's id, chosen by the gateway (None: this event's id)."""


@event("InstanceResizeRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResizeRequested(Event):
    """The instance's owner asked for it to run with another flavor (aggregate: instance id):
    a cold resize, which the scheduler runs as the flow `flow_id`."""

    flavor: Flavor
    """The new flavor, copied from the flavor table (its disk is not below the current one)."""
    flow_id: str


@event("HostDrainRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostDrainRequested(Event):
    """An administrator asked to empty a host (aggregate: host name): the gateway writes it
    after a `HostDisabled`, and the scheduler live-migrates every running instance off the host
    as a flow whose id is `flow_id`, a bounded number at a time."""

    flow_id: str


@event("RebalanceRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceRequested(Event):
    """An administrator asked to execute a rebalancing plan (aggregate: ``rebalance``): the
    scheduler live-migrates its `moves` in order, a bounded number at a time, as the flow
    `flow_id`, skipping those the cluster no longer allows. The scores are the plan's (the
    imbalance before and after its moves, `virga_rebalance`)."""

    flow_id: str
    moves: tuple[PlannedMove, ...]
    score_before: float
    score_after: float


@event("InstanceDeletionRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDeletionRequested(Event):
    """A tenant asked to delete an instance (aggregate: instance id)."""


@event("HostDisabled")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostDisabled(Event):
    """An admin took a host out of scheduling (aggregate: host name); its instances stay."""

    reason: str = ""


@event("HostEnabled")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostEnabled(Event):
    """An admin put a host back into scheduling (aggregate: host name)."""


@event("AllocationRatiosSet")
@dataclass(frozen=True, slots=True, kw_only=True)
class AllocationRatiosSet(Event):
    """Overcommit ratios (aggregate: host name, or ``*`` for the default of every host)."""

    cpu: float
    ram: float
    disk: float


@event("IdempotentRequestRecorded")
@dataclass(frozen=True, slots=True, kw_only=True)
class IdempotentRequestRecorded(Event):
    """A POST with an Idempotency-Key and the response it got (aggregate: principal + key).

    Written in the same transaction as the request's own events, so a retry after any crash
    finds either both or neither.
    """

    key: str
    principal: str
    method_path: str
    request_sha256: str
    status: int
    body: str
    """The JSON response body, secrets removed."""


@event("ConsoleTicketIssued")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleTicketIssued(Event):
    """A one-time ticket to the serial console of an instance was handed to its owner or an
    admin (aggregate: instance id; the envelope's tenant is the instance's). Only the ticket's
    sha256 is ever stored: the compute agent of `host` opens one session for a ticket whose
    hash it has folded, before `expires_at`, once (ConsoleSessionOpened)."""

    host: str
    ticket_sha256: str
    expires_at: datetime
    principal: str
    """Who asked for it (`admin`, or `tenant:<id>`), for the audit trail."""
