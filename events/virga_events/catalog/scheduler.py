"""Facts the scheduler writes to `virga.scheduler`: placements, refusals, claims, host health,
the commands of the live migrations and evacuations it runs, and the ends of its host drains."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.common import Flavor
from virga_events.registry import Event, event


@event("InstanceScheduled")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceScheduled(Event):
    """The instance was placed and its resources claimed on `host` (aggregate: instance id).

    Carries what the compute agent needs to build the instance, so agents read no other topic
    to boot it.
    """

    host: str
    rack: str
    zone: str
    attempt: int
    """1 for the first placement, 2 and 3 after the instance failed on other hosts."""
    name: str
    flavor: Flavor
    image: str | None = None
    network: str | None = None
    delete_on_termination: bool = True
    restart_policy: InstanceRestartPolicy = "never"
    """Copied from the request: the agent restarts the guest after a stop it did not ask for."""
    hostname: str | None = None
    """Copied from the request (the guest's host name); None in events before it."""
    key_name: str | None = None
    """Copied from the request: the name `public_keys` go by in the guest's metadata."""
    public_keys: tuple[str, ...] = ()
    """Copied from the request: the keypair's OpenSSH public key(s) as they were then."""
    user_data: str | None = None
    """Copied from the request: the tenant's user data, base64 as sent."""
    config_drive: bool = False
    """Copied from the request: the agent attaches a config drive (`config-2`) to the guest."""


@event("InstanceSchedulingFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSchedulingFailed(Event):
    """No host could take the instance; `reason` is shown to the user (aggregate: instance)."""

    reason: str
    attempts: int


@event("ClaimReleased")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimReleased(Event):
    """The instance's resources on `host` are free again (aggregate: instance id)."""

    host: str
    reason: str


@event("HostMarkedDown")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostMarkedDown(Event):
    """A host missed its heartbeats and gets nothing new (aggregate: host name)."""

    last_heartbeat_at: datetime | None


@event("HostMarkedUp")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostMarkedUp(Event):
    """A host that was down sends heartbeats again (aggregate: host name)."""


# -- live migration (virga_scheduler.core.migration; aggregate: instance id) -------------------
# The scheduler hosts the flow. Every event below carries the flow's id, and each command its
# step, so an agent that deduplicates on (flow id, step) answers a re-sent command once.


@event("MigrationDestinationClaimed")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationDestinationClaimed(Event):
    """The instance's resources are held on `host` as well, for the migration `flow_id`."""

    flow_id: str
    step: str
    host: str
    rack: str
    zone: str
    flavor: Flavor


@event("MigrationDestinationRefused")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationDestinationRefused(Event):
    """No host can take the instance (or not the one asked for); `reason` says why."""

    flow_id: str
    step: str
    reason: str


@event("MigrationDestinationReleased")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationDestinationReleased(Event):
    """The flow's hold on `host` is given up (the migration failed before moving the guest)."""

    flow_id: str
    host: str
    reason: str


@event("MigrationPortPlumbRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortPlumbRequested(Event):
    """The network agent of `host` is asked to plumb the instance's ports, not yet bound to
    the guest (the source keeps the VXLAN forwarding until the switch)."""

    flow_id: str
    step: str
    host: str


@event("MigrationPortUnplumbRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortUnplumbRequested(Event):
    """The network agent of `host` is asked to remove what a plumb request made there."""

    flow_id: str
    host: str


@event("InstanceMigrationRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceMigrationRequested(Event):
    """The compute agent of `source` is asked to live-migrate the guest to `destination`."""

    flow_id: str
    step: str
    source: str
    destination: str
    destination_uri: str | None = None
    """The destination's `HostRegistered.migration_uri`; None: it cannot receive (the agent
    answers InstanceMigrationFailed)."""
    migration_address: str | None = None
    """The destination's `HostRegistered.migration_address` (None: `destination_uri`'s)."""
    destination_ceph_user: str | None = None
    """The destination's `HostRegistered.ceph_user`: the guest's RBD disks are opened there
    as that user, with the secret `destination_ceph_secret_uuid` (None: as on the source)."""
    destination_ceph_secret_uuid: str | None = None
    placement: InstanceScheduled | None = None
    """The instance as it runs on `destination` once moved: what that host's agent adopts."""


@event("MigrationPortSwitchRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPortSwitchRequested(Event):
    """The network agents are asked to bind the instance's ports on `host` (forwarding and a
    gratuitous ARP follow) and to unbind them on `source`."""

    flow_id: str
    step: str
    host: str
    source: str


@event("MigrationClaimMoved")
@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationClaimMoved(Event):
    """The instance's claim is now the one on `destination`; `source`'s resources are free."""

    flow_id: str
    step: str
    source: str
    destination: str


# -- evacuation (virga_scheduler.core.evacuation) ---------------------------------------------
# The destination claim, its release and the claim's move, and the port's switch are the live
# migration's events (MigrationDestinationClaimed ... MigrationClaimMoved) with the evacuation
# flow's id: the claims ledger, the network agents and the audit read them alike.


@event("InstanceDisksFenceRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDisksFenceRequested(Event):
    """The storage service is asked to cut `host` (down) off the instance's RBD disks: break
    every exclusive lock on them, so their holder is blocklisted and can no longer write."""

    flow_id: str
    step: str
    host: str


@event("InstanceRebuildRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRebuildRequested(Event):
    """The compute agent of `destination` is asked to define and start the instance from its
    existing disks (its `source` host is down and fenced); `placement`: the instance there."""

    flow_id: str
    step: str
    source: str
    destination: str
    placement: InstanceScheduled


@event("HostDrained")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostDrained(Event):
    """A drain (flow `flow_id`) ended: the host runs none of the instances it ran (aggregate:
    host name). `stopped` instances stay placed on it, running nothing."""

    flow_id: str
    step: str
    moved: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()


@event("HostDrainFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostDrainFailed(Event):
    """A drain (flow `flow_id`) ended with instances still running on the host (aggregate:
    host name): `unmoved` could not move (no valid host, the migration failed); they run on."""

    flow_id: str
    step: str
    reason: str
    unmoved: tuple[str, ...]
    moved: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()


@event("RebalanceFinished")
@dataclass(frozen=True, slots=True, kw_only=True)
class RebalanceFinished(Event):
    """A rebalance (flow `flow_id`, aggregate: ``rebalance``) ended: every planned move had its
    one try. `moved` live-migrated to their planned host; `unmoved` could not (the destination
    no longer passes the placement filters, the migration failed): they run on where they
    were; `skipped` had left their planned source (moved, deleted, stopped) before their turn."""

    flow_id: str
    step: str
    moved: tuple[str, ...] = ()
    unmoved: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()


# The resize flow (`virga_scheduler.core.resize`): the scheduler's claim and its commands.


@event("ResizeClaimed")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResizeClaimed(Event):
    """The new flavor's resources are held on `host` for the resize `flow_id` (the same host
    as the instance's, or another that passes every placement filter)."""

    flow_id: str
    step: str
    host: str
    rack: str
    zone: str
    flavor: Flavor


@event("ResizeRefused")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResizeRefused(Event):
    """No host has room for the new flavor (or the instance cannot be resized): `reason`."""

    flow_id: str
    step: str
    reason: str


@event("ResizeClaimReleased")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResizeClaimReleased(Event):
    """The resize's hold on `host` is given up: the resize failed before the guest changed."""

    flow_id: str
    host: str
    reason: str


@event("InstanceResizeStopRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResizeStopRequested(Event):
    """The compute agent of `host` is asked to stop the guest for its resize (a stopped one
    stays stopped); it answers InstanceResizeStopped or InstanceResizeFailed."""

    flow_id: str
    step: str
    host: str


@event("InstanceResizeRestartRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResizeRestartRequested(Event):
    """The compute agent of `host` is asked to start again the guest it stopped for a resize
    that failed (the undo of the stop; nothing if it was stopped before)."""

    flow_id: str
    host: str


@event("BootVolumeGrowRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class BootVolumeGrowRequested(Event):
    """The storage service is asked to grow the instance's boot volume to `size_gb`
    (aggregate: instance id); it answers BootVolumeGrown or BootVolumeGrowFailed."""

    flow_id: str
    step: str
    size_gb: int


@event("InstanceRedefineRequested")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRedefineRequested(Event):
    """The instance is to run with `placement`'s flavor on `placement.host`, started again if
    `start`. When that is another host than `source`, the source's agent undefines the guest
    and the destination's defines it; else the source's agent redefines it in place."""

    flow_id: str
    step: str
    source: str
    placement: InstanceScheduled
    start: bool


@event("ResizeClaimMoved")
@dataclass(frozen=True, slots=True, kw_only=True)
class ResizeClaimMoved(Event):
    """The instance's claim is now the resize's on `destination` with the new flavor; the
    old claim on `source` is free."""

    flow_id: str
    step: str
    source: str
    destination: str
    flavor: Flavor
