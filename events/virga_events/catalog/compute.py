"""Facts compute agents write, each to its host's `virga.compute.<host>`: hosts, instance
lifecycle, usage samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.common import Flavor
from virga_events.registry import Event, Payload, event, upcaster

Phase = Literal["spawn", "start", "stop", "reboot", "delete", "restart", "volume", "port"]
"""What an InstanceFailed was about. `volume` and `port` are the final ones (`FINAL_PHASES`)."""

StopCause = Literal["requested", "found", "shutdown", "destroyed", "crashed"]
"""Why an instance's domain is off: `requested` by a stop request Virga carried out; `found` off
by the agent at start; or, without Virga asking, the guest powered itself off (`shutdown`),
someone destroyed it outside Virga (`destroyed`), or it crashed (`crashed`: its QEMU died or
the guest panicked)."""

OUTSIDE_CAUSES: frozenset[str] = frozenset({"shutdown", "destroyed", "crashed"})
"""Stops Virga did not ask for: the instance's restart policy decides what happens next."""

FINAL_PHASES: frozenset[str] = frozenset({"volume", "port"})
"""Failures of what the instance is built from (its boot volume or its port could not be made):
another host would not do better, so the scheduler releases the claim and gives up at once."""


@event("HostRegistered", version=4)
@dataclass(frozen=True, slots=True, kw_only=True)
class HostRegistered(Event):
    """A compute agent reports its host and capacity at start (aggregate: host name).

    v2 added `console_endpoint`, v3 `migration_uri` and `migration_address`, v4 `ceph_user`
    and `ceph_secret_uuid`."""

    rack: str
    zone: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    traits: tuple[str, ...] = ()
    console_endpoint: str | None = None
    """`host:port` of the agent's console server (the gateway relays consoles there); None:
    this agent serves no console."""
    migration_uri: str | None = None
    """How a peer's hypervisor reaches this host's to live-migrate a guest here (libvirt:
    `qemu+tcp://<address>/system`); None: this host cannot receive live migrations."""
    migration_address: str | None = None
    """Where a peer's QEMU sends a migrating guest's memory (`tcp://<address>[:port]`); None:
    as `migration_uri` (this host cannot receive live migrations when both are None)."""
    ceph_user: str | None = None
    """The cephx user this host's guests open their RBD volumes as (one per host, so one host
    can be cut off alone): a guest live-migrated here takes it on. None: no cephx."""
    ceph_secret_uuid: str | None = None
    """The UUID of the libvirt secret holding `ceph_user`'s key on this host."""


@upcaster("HostRegistered", from_version=1)
def _host_registered_v1(payload: Payload) -> Payload:
    # Agents before consoles served none.
    return {**payload, "console_endpoint": None}


@upcaster("HostRegistered", from_version=2)
def _host_registered_v2(payload: Payload) -> Payload:
    # Agents before live migration received none.
    return {**payload, "migration_uri": None, "migration_address": None}


@upcaster("HostRegistered", from_version=3)
def _host_registered_v3(payload: Payload) -> Payload:
    # Agents before per-host Ceph identities followed guests announced none.
    return {**payload, "ceph_user": None, "ceph_secret_uuid": None}


@event("HostHeartbeat")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostHeartbeat(Event):
    """The agent is alive (aggregate: host name); the scheduler marks silent hosts down."""

    running: int
    """Instances the agent runs now."""


@event("InstanceStarted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStarted(Event):
    """The instance's domain runs on `host` (aggregate: instance id)."""

    host: str


@event("InstanceStopped")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceStopped(Event):
    """The instance's domain is shut off, on request, as found at start, or on its own
    (aggregate: id). Its usage stops at the event's time: for a stop Virga did not ask for,
    the moment the agent learnt of it (a libvirt lifecycle event, or a power-state sync)."""

    host: str
    cause: StopCause = "requested"


@event("InstanceRestarted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRestarted(Event):
    """The agent started the domain again after a stop it did not ask for, as the instance's
    restart policy says (aggregate: instance id). It runs again: a fresh QEMU process whose
    usage starts at this event's time, as after InstanceStarted."""

    host: str
    cause: StopCause
    """Why it had stopped (one of `OUTSIDE_CAUSES`)."""
    policy: InstanceRestartPolicy


@event("InstanceRebooted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRebooted(Event):
    """The instance's domain was rebooted and runs (aggregate: instance id)."""

    host: str


@event("InstanceFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceFailed(Event):
    """An operation on the instance failed on `host` (aggregate: instance id).

    After a failed spawn the agent has removed any partial domain; the scheduler releases
    the claim and reschedules elsewhere, within its attempt limit. After a failure of a
    `FINAL_PHASES` phase no domain was ever made, and the scheduler releases the claim and
    gives up (InstanceSchedulingFailed with this reason): the instance is in ERROR.
    """

    host: str
    phase: Phase
    reason: str


@event("InstanceDeleted")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDeleted(Event):
    """The instance is gone for good (aggregate: instance id).

    Written by the agent that destroyed its domain, or by the scheduler (`host` None) for an
    instance deleted before it was ever placed.
    """

    host: str | None


@event("InstanceDomainLost")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceDomainLost(Event):
    """At start, the agent found no domain for an instance that should exist (aggregate: id)."""

    host: str


@event("UnknownDomainFound")
@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownDomainFound(Event):
    """A Virga-named domain the log knows nothing of; reported, never destroyed (aggregate:
    host name)."""

    domain: str


@event("UsageSampled")
@dataclass(frozen=True, slots=True, kw_only=True)
class UsageSampled(Event):
    """Resource use of one instance over one sampling period (aggregate: instance id).

    Counters are cumulative since the domain started, as libvirt reports them; billing takes
    differences.
    """

    host: str
    period_seconds: float
    cpu_time_ns: int
    memory_kb: int
    disk_read_bytes: int
    disk_write_bytes: int
    net_rx_bytes: int
    net_tx_bytes: int


@event("ConsoleSessionOpened")
@dataclass(frozen=True, slots=True, kw_only=True)
class ConsoleSessionOpened(Event):
    """The agent of `host` let a console session in on the ticket of this hash, which is used
    from now on (aggregate: instance id). Written before the first byte is relayed."""

    host: str
    ticket_sha256: str
    session_id: str


@event("InstanceMigrated")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceMigrated(Event):
    """The agent of `host` (the source) moved the running guest to `destination`, which runs
    it now (aggregate: instance id). Billing follows the instance to `destination` from here."""

    flow_id: str
    step: str
    host: str
    destination: str
    seconds: float
    """Wall time of the migration."""
    downtime_ms: int | None = None
    """The guest's pause at the switch-over, as QEMU measured it (None: not reported)."""


@event("InstanceMigrationFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceMigrationFailed(Event):
    """The agent of `host` (the source) could not migrate the guest; it runs on at `host`
    (libvirt resumes it after an aborted or failed migration). `reason` says why."""

    flow_id: str
    step: str
    host: str
    reason: str


# The resize flow's steps on the compute agents (`virga_scheduler.core.resize`).


@event("InstanceResizeStopped")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResizeStopped(Event):
    """The agent of `host` holds the guest stopped for its resize; `was_running`: it ran."""

    flow_id: str
    step: str
    host: str
    was_running: bool


@event("InstanceResized")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResized(Event):
    """The guest is defined with `flavor` on `host` now (and runs if `running`): billing rates
    it at the new flavor from here."""

    flow_id: str
    step: str
    host: str
    flavor: Flavor
    running: bool


@event("InstanceResizeFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceResizeFailed(Event):
    """The agent of `host` could not carry out the resize's `step`: `reason`."""

    flow_id: str
    step: str
    host: str
    reason: str


@event("InstanceRebuilt")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRebuilt(Event):
    """The agent of `host` (an evacuation's destination) defined and started the instance
    from its existing disks (aggregate: instance id); billing follows it to `host`."""

    flow_id: str
    step: str
    host: str


@event("InstanceRebuildFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceRebuildFailed(Event):
    """The agent of `host` could not rebuild the instance; `reason` says why."""

    flow_id: str
    step: str
    host: str
    reason: str
