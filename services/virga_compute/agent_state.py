"""What one compute agent knows, folded from the log: its instances, pending deletions, usage.

The fold is written to give the same state whatever the interleaving of its input topics
(api and scheduler are read side by side, in no fixed order) and even when, as in a rebuild,
every input is folded before the agent's own outcome events. So *what the domain is doing*
comes only from the agent's own events (InstanceStarted, InstanceStopped...), and input
events only record what was asked (a placement, a deletion request) or what another service
made (a boot volume on `<ns>.storage`, a port bound on `<ns>.network`).

An instance is *ready* to spawn once it is placed here, its boot volume exists (if it boots
from an image) and its port is bound on this host (if it has a network): `missing` says what
it still waits for. Each prerequisite remembers the event that provided it, so exactly one
event — whichever completes the set — spawns it, in any arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from virga_events import Envelope
from virga_events.catalog.api import InstanceDeletionRequested
from virga_events.catalog.attachments import (
    VolumeAttached,
    VolumeAttachmentFailed,
    VolumeAttachRequested,
    VolumeDetached,
)
from virga_events.catalog.compute import (
    FINAL_PHASES,
    HostHeartbeat,
    InstanceDeleted,
    InstanceDomainLost,
    InstanceFailed,
    InstanceRebooted,
    InstanceStarted,
    InstanceStopped,
    UsageSampled,
)
from virga_events.catalog.network import (
    NetworkCreated,
    NetworkDeleted,
    PortAllocationFailed,
    PortBindingFailed,
    PortBound,
    PortDeleted,
    PortUnbound,
    instance_port_id,
)
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.catalog.storage import VolumeCreated, VolumeDeleted, VolumeExtended, VolumeFailed

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

    def disk_target(self, volume_id: str) -> str | None:
        """The target the volume is a disk of the instance at: its boot volume (whose id is
        the instance's) at vda, an attached one where it was attached; else None."""
        if volume_id == self.instance_id and self.image is not None:
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


ATTACH_TARGETS = tuple(f"vd{c}" for c in "bcdefghijklmnopqrstuvwxyz")
"""Targets of attached volumes, in the order they are handed out (vda is the boot volume)."""


@dataclass(slots=True)
class AgentState:
    """The fold of one agent: `host` is fixed, the rest comes from events."""

    host: str
    instances: dict[str, InstanceRecord] = field(default_factory=dict)
    pending_deletions: dict[str, str] = field(default_factory=dict)
    """Instance id -> deletion request event id, for deletions of instances this host does
    not (yet) run: the request may overtake the placement (another topic). Insertion order
    is age order; bounded by TOMBSTONE_LIMIT."""
    deleted: dict[str, None] = field(default_factory=dict)
    """Ids of instances deleted anywhere (an ordered set, bounded by TOMBSTONE_LIMIT): a
    placement that arrives after the deletion must never spawn."""
    usage_sampled_at: datetime | None = None
    """When this agent last emitted usage samples."""
    heartbeat_at: datetime | None = None
    """When this agent last emitted a heartbeat."""
    boot_volumes: dict[str, str] = field(default_factory=dict)
    """Instance id -> the VolumeCreated of its boot volume, for every boot volume that exists
    in the cloud: an instance may be (re)placed here long after its volume was made."""
    volume_failures: dict[str, str] = field(default_factory=dict)
    """Volume id -> reason of a failed creation (bounded); a boot volume's id is its
    instance's."""
    bound_ports: dict[str, PortBinding] = field(default_factory=dict)
    """Port id -> binding, for the ports bound on this host."""
    port_failures: dict[str, str] = field(default_factory=dict)
    """Port id -> reason its allocation, or its binding on this host, failed (bounded)."""
    networks: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Network id -> (CIDR, gateway address), for telling a guest its address: no DHCP runs."""

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
        if record.image is not None and record.instance_id not in self.boot_volumes:
            waiting.append("volume")
        port_id = record.port_id
        if port_id is not None and port_id not in self.bound_ports:
            waiting.append("port")
        return waiting

    def failure(self, record: InstanceRecord) -> tuple[str, str] | None:
        """(phase, reason) when a prerequisite the instance waits for has failed."""
        missing = self.missing(record)
        if "volume" in missing and (reason := self.volume_failures.get(record.instance_id)):
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
        if record.image is not None and self.boot_volumes.get(record.instance_id) == event_id:
            return True
        port_id = record.port_id
        binding = None if port_id is None else self.bound_ports.get(port_id)
        return binding is not None and binding.event_id == event_id


def _bounded_put(table: dict[str, Any], key: str, value: Any) -> None:
    table.pop(key, None)  # re-inserted as the youngest
    table[key] = value
    while len(table) > TOMBSTONE_LIMIT:
        del table[next(iter(table))]


def _leave(state: AgentState, record: InstanceRecord) -> None:
    """The instance is no longer this host's; a deletion it was waiting for stays pending."""
    del state.instances[record.instance_id]
    if record.deletion_event_id is not None:
        _bounded_put(state.pending_deletions, record.instance_id, record.deletion_event_id)


def _placed(state: AgentState, envelope: Envelope, event: InstanceScheduled) -> None:
    instance_id = envelope.aggregate_id
    record = state.instances.get(instance_id)
    if event.host != state.host:
        if record is not None and event.attempt > record.attempt:
            _leave(state, record)  # the latest placement wins
        return
    if instance_id in state.deleted:
        return
    if record is not None and event.attempt <= record.attempt:
        return  # a duplicate or stale placement
    pending = state.pending_deletions.pop(instance_id, None)
    state.instances[instance_id] = InstanceRecord(
        instance_id=instance_id,
        tenant_id=envelope.tenant_id,
        name=event.name,
        vcpus=event.flavor.vcpus,
        ram_mb=event.flavor.ram_mb,
        attempt=event.attempt,
        scheduled_event_id=envelope.event_id,
        image=event.image,
        network=event.network,
        deletion_event_id=record.deletion_event_id if record is not None else pending,
    )


def _deletion_requested(state: AgentState, envelope: Envelope) -> None:
    instance_id = envelope.aggregate_id
    if instance_id in state.deleted:
        return
    record = state.instances.get(instance_id)
    if record is not None:
        if record.deletion_event_id is None:
            record.deletion_event_id = envelope.event_id
    elif instance_id not in state.pending_deletions:
        _bounded_put(state.pending_deletions, instance_id, envelope.event_id)


def _deleted(state: AgentState, envelope: Envelope, event: InstanceDeleted) -> None:
    instance_id = envelope.aggregate_id
    state.pending_deletions.pop(instance_id, None)
    _bounded_put(state.deleted, instance_id, None)
    # Only the agent that destroyed the domain may drop its record: anyone else's deletion
    # (the scheduler's, for an instance it believes unplaced) leaves our domain to report.
    if event.host == state.host:
        state.instances.pop(instance_id, None)


Outcome = InstanceStarted | InstanceStopped | InstanceRebooted | InstanceDomainLost | InstanceFailed
"""What this agent reports about its instances' domains."""
_OUTCOMES = (InstanceStarted, InstanceStopped, InstanceRebooted, InstanceDomainLost, InstanceFailed)


def _outcome(
    state: AgentState,
    envelope: Envelope,
    record: InstanceRecord,
    event: Outcome,
) -> None:
    if isinstance(event, InstanceStarted):
        record.status, record.domain_lost = "running", False
        record.usage_since = envelope.occurred_at  # a fresh QEMU process: counters restart
    elif isinstance(event, InstanceRebooted):
        # The same QEMU process (or a fresh one after a hard reboot): either way billing
        # diffs cumulative counters, so the usage period goes on.
        record.status, record.domain_lost = "running", False
    elif isinstance(event, InstanceStopped):
        record.status, record.domain_lost = "stopped", False
    elif isinstance(event, InstanceDomainLost):
        record.domain_lost = True
    elif event.phase == "spawn" and state.provided_by(record, envelope.causation_id):
        # The spawn of this placement failed (decided on whichever event completed its
        # prerequisites): the scheduler places it elsewhere.
        _leave(state, record)
    elif event.phase in FINAL_PHASES:
        _leave(state, record)  # never spawned, and the scheduler gives up on it
    elif event.phase == "delete" and envelope.causation_id == record.deletion_event_id:
        record.deletion_event_id = None  # a new request may try again


def evolve(state: AgentState, envelope: Envelope) -> AgentState:
    """Fold one event into the agent's state (pure, deterministic)."""
    event = envelope.payload
    if isinstance(event, InstanceScheduled):
        _placed(state, envelope, event)
    elif isinstance(event, InstanceDeletionRequested):
        _deletion_requested(state, envelope)
    elif isinstance(event, InstanceDeleted):
        _deleted(state, envelope, event)
    elif isinstance(event, UsageSampled) and event.host == state.host:
        if state.usage_sampled_at is None or envelope.occurred_at > state.usage_sampled_at:
            state.usage_sampled_at = envelope.occurred_at
        if (record := state.instances.get(envelope.aggregate_id)) is not None:
            record.usage_since = envelope.occurred_at
    elif isinstance(event, HostHeartbeat) and envelope.aggregate_id == state.host:
        state.heartbeat_at = envelope.occurred_at
    elif isinstance(event, _OUTCOMES) and event.host == state.host:
        record = state.instances.get(envelope.aggregate_id)
        if record is not None:
            _outcome(state, envelope, record, event)
    else:
        _resource(state, envelope)
    return state


def _resource(state: AgentState, envelope: Envelope) -> None:
    """Boot volumes, ports and attachments: what other services made for the instances."""
    event = envelope.payload
    key = envelope.aggregate_id
    if isinstance(event, VolumeCreated):
        if event.instance_id is not None and event.instance_id not in state.boot_volumes:
            state.boot_volumes[event.instance_id] = envelope.event_id
    elif isinstance(event, VolumeFailed):
        if event.operation == "create":
            _bounded_put(state.volume_failures, key, event.reason)
    elif isinstance(event, VolumeDeleted):
        state.boot_volumes.pop(key, None)
        state.volume_failures.pop(key, None)
    elif isinstance(event, PortBound) and event.host == state.host:
        known = state.bound_ports.get(key)
        # A repeated report of the same binding keeps the event that first provided it.
        if known is None or (known.mac, known.tap) != (event.mac, event.tap):
            state.bound_ports[key] = PortBinding(
                event.mac, event.tap, envelope.event_id, event.network_id, tuple(event.ips)
            )
    elif isinstance(event, NetworkCreated):
        state.networks[key] = (event.cidr, event.gateway_ip)
    elif isinstance(event, NetworkDeleted):
        state.networks.pop(key, None)
    elif isinstance(event, PortUnbound) and event.host == state.host:
        state.bound_ports.pop(key, None)
    elif isinstance(event, PortDeleted):
        state.bound_ports.pop(key, None)
        state.port_failures.pop(key, None)
    elif isinstance(event, PortAllocationFailed) or (
        isinstance(event, PortBindingFailed) and event.host == state.host
    ):
        _bounded_put(state.port_failures, key, event.reason)
    elif isinstance(event, VolumeAttachRequested):
        record = state.instances.get(event.instance_id)
        if record is not None and key not in record.attachments and key not in record.attaching:
            free = [t for t in ATTACH_TARGETS if t not in record.used_targets()]
            if free:
                record.attaching[key] = free[0]
    elif isinstance(event, VolumeAttached | VolumeDetached | VolumeAttachmentFailed):
        _attachment_outcome(state, key, event)
    elif isinstance(event, VolumeExtended):
        for record in state.instances.values():
            if record.disk_target(key) is not None:
                record.grown[key] = max(record.grown.get(key, 0), event.size_gb)


def _attachment_outcome(
    state: AgentState,
    volume_id: str,
    event: VolumeAttached | VolumeDetached | VolumeAttachmentFailed,
) -> None:
    record = state.instances.get(event.instance_id)
    if record is None:
        return
    if isinstance(event, VolumeAttachmentFailed):
        if event.operation == "attach":
            record.attaching.pop(volume_id, None)
        return
    if event.host != state.host:
        return
    record.attaching.pop(volume_id, None)
    if isinstance(event, VolumeAttached):
        record.attachments[volume_id] = event.target_dev
    else:
        record.attachments.pop(volume_id, None)
        record.grown.pop(volume_id, None)
