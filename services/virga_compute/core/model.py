"""What one compute agent knows, folded from the log: its instances, pending deletions, usage.

An instance is *ready* to spawn once it is placed here, its boot volume exists (if it boots
from an image) and its port is bound on this host (if it has a network): `missing` says what
it still waits for. Each prerequisite remembers the event that provided it, so exactly one
event — whichever completes the set — spawns it, in any arrival order. The fold that builds
this state is `core.fold`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.common import Flavor
from virga_events.catalog.compute import OUTSIDE_CAUSES
from virga_events.catalog.network import instance_port_id
from virga_events.catalog.storage import boot_volume_id

Status = Literal["building", "running", "stopped"]
"""What the domain should be doing: `building` until the spawn's outcome is known."""

TOMBSTONE_LIMIT = 10_000
"""Bound of each tombstone collection (pending deletions, deleted ids, failures of boot
volumes and ports), oldest dropped first.

Every agent sees every deletion in the cloud, so both sets are bounded. A pending deletion
only has to outlive the race between the api and scheduler topics (seconds), and a deleted
id only has to outlive late duplicates of its placement: evicting one requires 10,000 other
deletions in between, which a real race window never spans.
"""


@dataclass(slots=True)
class InstanceRecord:
    """An instance placed on this host, from its placement until it is deleted or leaves."""

    instance_id: str
    tenant_id: str | None
    name: str
    """Display name, recorded in the domain metadata."""
    vcpus: int
    ram_mb: int
    attempt: int
    """Scheduling attempt of the placement; a later attempt replaces an earlier one."""
    scheduled_event_id: str
    """The InstanceScheduled that placed it here: only that event spawns it, so a duplicate
    placement never makes a second domain."""
    image: str | None = None
    network: str | None = None
    status: Status = "building"
    domain_lost: bool = False
    """The agent found no domain for it (InstanceDomainLost) and has not made one since."""
    deletion_event_id: str | None = None
    """The deletion request being carried out; None when none is pending."""
    usage_since: datetime | None = None
    """Start of the current usage period: the last sample, or the last start."""
    attachments: dict[str, str] = field(default_factory=dict)
    """Volume id -> target device of the volumes attached to it (this agent's reports)."""
    attaching: dict[str, str] = field(default_factory=dict)
    """Volume id -> target device chosen for an attach request not yet answered."""
    grown: dict[str, int] = field(default_factory=dict)
    """Volume id -> the size (GiB) its latest growth (VolumeExtended) set, for the volumes
    that are its disks: what a running guest must see, told again at each agent start."""
    restart_policy: InstanceRestartPolicy = "never"
    """What follows a stop Virga did not ask for (`core.power`)."""
    actions: dict[str, str] = field(default_factory=dict)
    """Request event id -> action (start, stop, reboot) of the power requests whose outcome
    this agent has not reported yet: a power change meanwhile is Virga's own doing."""
    changed_at: datetime | None = None
    """Time of this agent's latest report of its power state (started, stopped, rebooted,
    restarted, lost): what the hypervisor said before then is already accounted for."""
    restarting: bool = False
    """A stop Virga did not ask for was recorded and its restart policy restarts it: the
    restart's outcome (InstanceRestarted, or InstanceFailed) is still to come."""
    hostname: str | None = None
    """The guest's host name from the request (its config drive says it); None: its name."""
    key_name: str | None = None
    """The name `public_keys` go by in the guest's metadata."""
    public_keys: tuple[str, ...] = ()
    """The tenant's OpenSSH public key(s), as copied at request time."""
    user_data: str | None = None
    """The tenant's user data, base64 as sent."""
    config_drive: bool = False
    """The guest gets a config drive (`core.spec.ConfigDrive`)."""
    migration_flow: str | None = None
    """The live migration moving it away from this host (`core.migration`), until its outcome;
    None when none runs. The hypervisor's reports meanwhile are left alone."""
    migration_event_id: str | None = None
    """The InstanceMigrationRequested that started that migration: only it migrates."""
    resize_flow: str | None = None
    """The resize holding it (`core.resize`), from its stop request until the flow ends; the
    hypervisor's reports meanwhile are left alone."""
    resize_ran: bool = False
    """That resize stopped it running: undone, it is started again."""
    resize_flavor: Flavor | None = None
    """The new flavor of the resize moving it here (`core.resize`), until it is defined."""

    def restarts_after(self, cause: str) -> bool:
        """Whether its restart policy starts it again after a stop of this cause: never after
        one Virga asked for; `on-crash` only after a crash; `always` after any other."""
        if cause not in OUTSIDE_CAUSES:
            return False
        return self.restart_policy == "always" or (
            self.restart_policy == "on-crash" and cause == "crashed"
        )

    def disk_target(self, volume_id: str) -> str | None:
        """The target the volume is a disk of the instance at: its boot volume at vda, an
        attached one where it was attached; else None."""
        if volume_id == boot_volume_id(self.instance_id) and self.image is not None:
            return "vda"
        return self.attachments.get(volume_id)

    @property
    def port_id(self) -> str | None:
        """The port made for it when it has a network."""
        return None if self.network is None else instance_port_id(self.instance_id)

    def used_targets(self) -> set[str]:
        """Disk targets taken or promised: the boot volume's, attached and attaching ones."""
        return {
            *(("vda",) if self.image else ()),
            *self.attachments.values(),
            *self.attaching.values(),
        }


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A port plugged in on this host (PortBound), ready for a domain to open its tap."""

    mac: str
    tap: str
    event_id: str
    """The PortBound that bound it: the event that may complete an instance's prerequisites."""
    network_id: str = ""
    ips: tuple[str, ...] = ()
    """The port's addresses, handed to the guest with its network's prefix and gateway."""


@dataclass(slots=True)
class ConsoleTicket:
    """A console ticket issued for an instance of this host (`core.console`), by its hash."""

    instance_id: str
    tenant_id: str | None
    expires_at: datetime
    session_id: str | None = None
    """The session it opened; once set, the ticket is used."""


ATTACH_TARGETS = tuple(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz")
"""Targets of attached volumes, in the order they are handed out (vda is the boot volume)."""


@dataclass(slots=True)
class ComputeState:
    """The fold of one agent: `host` is fixed, the rest comes from events."""

    host: str
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    pending_deletions: dict[str, str] = field(default_factory=dict)
    """Instance id -> deletion request event id, for deletions of instances this host does
    not (yet) run: the request may overtake the placement (another topic). Insertion order
    is age order; bounded by TOMBSTONE_LIMIT."""
    pending_actions: dict[str, dict[str, tuple[str, datetime]]] = field(default_factory=dict)
    """Instance id -> {request event id: (action, requested at)}, for power requests about
    instances this host does not (yet) run. Live, a request follows its instance's placement;
    a rebuild reads the gateway's and the scheduler's topics side by side, so the request may
    come first: the placement then takes those made after it. Bounded like
    `pending_deletions`."""
    deleted: dict[str, None] = field(default_factory=dict)
    """Ids of instances deleted anywhere (an ordered set, bounded by TOMBSTONE_LIMIT): a
    placement that arrives after the deletion must never spawn."""
    usage_sampled_at: datetime | None = None
    """When this agent last emitted usage samples."""
    heartbeat_at: datetime | None = None
    """When this agent last emitted a heartbeat."""
    boot_volumes: dict[str, str] = field(default_factory=dict)
    """Boot volume id (`boot_volume_id` of its instance) -> the VolumeCreated that made it,
    for every boot volume that exists in the cloud: an instance may be (re)placed here long
    after its volume was made."""
    volume_failures: dict[str, str] = field(default_factory=dict)
    """Volume id -> reason of a failed creation (bounded); a boot volume's id is
    `boot_volume_id` of its instance."""
    bound_ports: dict[str, PortBinding] = field(default_factory=dict)
    """Port id -> binding, for the ports bound on this host."""
    port_failures: dict[str, str] = field(default_factory=dict)
    """Port id -> reason its allocation, or its binding on this host, failed (bounded)."""
    networks: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Network id -> (CIDR, gateway address), for telling a guest its address: no DHCP runs."""
    console_tickets: dict[str, ConsoleTicket] = field(default_factory=dict)
    """Ticket sha256 -> the console ticket issued for this host (`core.console`)."""
    incoming: dict[str, InstanceRecord] = field(default_factory=dict)
    """Flow id -> the instance a live migration moves here, adopted once its `migrate` step
    completed (`core.migration`); dropped if the flow fails. Bounded by TOMBSTONE_LIMIT."""
    migrated: dict[str, tuple[str, str, float]] = field(default_factory=dict)
    """Flow id -> (instance id, destination, seconds) of the migrations this agent carried out
    (its InstanceMigrated): a repeated request is answered the same. Bounded likewise."""
    ended: dict[str, datetime | None] = field(default_factory=dict)
    """Flow id -> when its `migrate` step completed (None: the flow failed), for flows whose
    InstanceMigrationRequested this agent had not read by then: an agent restarted mid-flow
    reads the scheduler's partitions in any order, so the request may come after. Bounded by
    TOMBSTONE_LIMIT."""
    rebuilding: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Instance id -> (flow id, step) of the evacuation rebuilding it here (`core.evacuation`),
    until its outcome."""
    evacuated: dict[str, str] = field(default_factory=dict)
    """Instance id -> the evacuation flow that rebuilt it elsewhere while this host was down:
    its stale domain here is removed, never started. Bounded by TOMBSTONE_LIMIT."""

    def running(self) -> int:
        """Instances whose domain runs, as far as the agent's own reports go."""
        return sum(
            1
            for record in self.instances.values()
            if record.status == "running" and not record.domain_lost
        )

    def mine(self, instance_id: str) -> InstanceRecord | None:
        return self.instances.get(instance_id)

    def missing(self, record: InstanceRecord) -> list[str]:
        """What the instance still waits for before it can spawn: 'volume', 'port'."""
        waiting = []
        if record.image is not None and boot_volume_id(record.instance_id) not in self.boot_volumes:
            waiting.append("volume")
        port_id = record.port_id
        if port_id is not None and port_id not in self.bound_ports:
            waiting.append("port")
        return waiting

    def failure(self, record: InstanceRecord) -> tuple[str, str] | None:
        """(phase, reason) when a prerequisite the instance waits for has failed."""
        missing = self.missing(record)
        volume_id = boot_volume_id(record.instance_id)
        if "volume" in missing and (reason := self.volume_failures.get(volume_id)):
            return "volume", f"boot volume failed: {reason}"
        port_id = record.port_id
        reason = None if port_id is None else self.port_failures.get(port_id)
        if "port" in missing and reason is not None:
            return "port", f"port failed: {reason}"
        return None

    def provided_by(self, record: InstanceRecord, event_id: str | None) -> bool:
        """Whether `event_id` is the event that provided one of the instance's prerequisites
        (its placement, its boot volume, its port binding)."""
        if event_id is None:
            return False
        if event_id == record.scheduled_event_id:
            return True
        boot_volume = None if record.image is None else boot_volume_id(record.instance_id)
        if boot_volume is not None and self.boot_volumes.get(boot_volume) == event_id:
            return True
        port_id = record.port_id
        binding = None if port_id is None else self.bound_ports.get(port_id)
        return binding is not None and binding.event_id == event_id
