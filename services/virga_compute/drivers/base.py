"""The compute driver contract: the `ComputeDriver` protocol, its errors and the values only
drivers report (capacity, usage, capabilities).

The specs a driver is given and the domain states it reports are core values
(`virga_compute.core.spec`): `decide` and the reconciliation plan use them too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from virga_compute.core.power import PowerChanged
from virga_compute.core.spec import DiskSpec, DomainInfo, InstanceSpec


class DriverError(Exception):
    """A compute driver operation failed; the message says which and why."""


class InstanceNotFound(DriverError):
    """No Virga-managed domain exists for this instance id on this host."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id!r} not found on this host")
        self.instance_id = instance_id


class HypervisorUnavailable(DriverError):
    """The hypervisor cannot be reached; the operation may be retried once it is back."""


class OperationNotSupported(DriverError):
    """The hypervisor behind this driver cannot do this operation (see `DriverCapabilities`)."""


class ConsoleStream(Protocol):
    """A guest's serial console, open for one session (`ComputeDriver.open_console`)."""

    async def read(self) -> bytes:
        """The guest's next output; b"" once the console is closed (the guest is gone, or a
        later session took the console over)."""
        ...

    async def write(self, data: bytes) -> None:
        """Type `data` into the console; DriverError once it is closed."""
        ...

    async def close(self) -> None:
        """End the session (idempotent); a pending `read` returns b""."""
        ...


class DiskConflict(DriverError):
    """The target device is already used by a different disk of the instance."""


class MigrationFailed(DriverError):
    """A live migration did not happen (destination unreachable or refusing, the guest not
    running, QEMU failing): the guest still runs here, as it did before."""


class MigrationAborted(MigrationFailed):
    """A live migration did not complete within `MigrationOptions.timeout` and was aborted:
    the guest still runs here."""


@dataclass(frozen=True, slots=True)
class HostCapacity:
    """Total resources of the host, before any claim (the scheduler subtracts those)."""

    vcpus: int
    """Logical CPUs of the host."""
    ram_mb: int
    """Physical memory in MiB."""
    disk_gb: int
    """Size in GiB of the filesystem holding local instance files (logs, kernels)."""


@dataclass(frozen=True, slots=True)
class UsageSample:
    """Cumulative counters of one running instance since it last started; billing diffs them."""

    instance_id: str
    """Virga's instance id."""
    cpu_time_ns: int
    """CPU time consumed by all vcpus, in nanoseconds."""
    memory_kb: int
    """Memory currently assigned to the guest, in KiB."""
    disk_read_bytes: int
    """Bytes read from all disks."""
    disk_write_bytes: int
    """Bytes written to all disks."""
    net_rx_bytes: int
    """Bytes received by the guest on all interfaces."""
    net_tx_bytes: int
    """Bytes sent by the guest on all interfaces."""


@dataclass(frozen=True, slots=True)
class DriverCapabilities:
    """What the hypervisor behind a driver can do, declared as data so the agent can plan."""

    live_disk_attach: bool
    """Disks can be attached to, detached from and grown under a running instance."""


@dataclass(frozen=True, slots=True)
class Reconnected:
    """`guest_events` listens again after losing the hypervisor (libvirtd restarted): changes
    in between went unreported, so every domain's state must be read again."""


GuestEvent = PowerChanged | Reconnected


@dataclass(frozen=True, slots=True)
class MigrationOptions:
    """How a live migration runs: the defaults suit an idle guest."""

    timeout: float = 300.0
    """Seconds after which a migration still running is aborted (`MigrationAborted`)."""
    auto_converge: bool = False
    """Throttle the guest's vCPUs while its memory is dirtied faster than it is sent."""
    compressed: bool = False
    """XBZRLE: send pages sent before as compressed deltas (big, busy guests)."""
    bandwidth_mib: int | None = None
    """Limit of the memory stream in MiB/s; None: the hypervisor's default."""
    poll_interval: float = 0.2
    """Seconds between progress samples."""
    destination_ceph: tuple[str, str] | None = None
    """(cephx user, libvirt secret UUID) the destination opens the guest's RBD disks with, when
    they differ from this host's (one cephx user per host); None: the same as here."""

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.poll_interval <= 0:
            raise ValueError("timeout and poll_interval must be positive")
        if self.bandwidth_mib is not None and self.bandwidth_mib <= 0:
            raise ValueError("bandwidth_mib must be positive")


@dataclass(frozen=True, slots=True)
class MigrationProgress:
    """One sample of a running migration (libvirt's job statistics)."""

    instance_id: str
    elapsed_ms: int
    """Time since the migration started."""
    data_total: int
    """Bytes to send as the hypervisor counts them now (memory and state)."""
    data_processed: int
    """Bytes sent so far."""
    data_remaining: int
    """Bytes still to send."""
    dirty_rate: int
    """Pages per second the guest dirties (0 when not measured yet)."""
    iteration: int
    """Passes over memory so far (the first sends everything, later ones what was dirtied)."""


@dataclass(frozen=True, slots=True)
class MigrationResult:
    """A completed live migration: the guest runs on the destination, not here."""

    seconds: float
    """Wall time of the whole migration, as the driver measured it."""
    last_progress: MigrationProgress | None
    """The last sample taken while it ran; None if it ended before the first."""


class ComputeDriver(Protocol):
    """How the compute agent drives a hypervisor.

    Every method is safe to repeat: the agent replays its decisions after a crash, so a
    second call with the same arguments finds the work done and succeeds. Only domains the
    driver itself created (Virga-managed) are ever listed or touched. Any method may raise
    `HypervisorUnavailable`; the call then had no effect or an effect a retry completes.
    """

    async def connect(self) -> None:
        """Open the hypervisor connection; raise `HypervisorUnavailable` if it is down."""
        ...

    async def close(self) -> None:
        """Release the connection. Instances keep running."""
        ...

    async def capabilities(self) -> DriverCapabilities:
        """Declare what this hypervisor supports."""
        ...

    async def capacity(self) -> HostCapacity:
        """Total host resources."""
        ...

    async def list_instances(self) -> list[DomainInfo]:
        """All Virga-managed instances on this host, in any state; other domains are hidden."""
        ...

    async def get_info(self, instance_id: str) -> DomainInfo:
        """State of one instance; `DomainState.MISSING` (not an error) when it does not exist."""
        ...

    async def spawn(self, spec: InstanceSpec, *, start: bool = True) -> None:
        """Define the instance and start it (only define it: `start` False, as a resize that
        moves a stopped guest does).

        Idempotent: if the instance is already defined it is started as it is (never
        redefined); if it is already running nothing happens. If this fails, a domain
        defined by this call is undefined again, so nothing half-made stays behind.
        Raises `DriverError` if a domain that Virga does not manage holds the name.
        """
        ...

    async def start(self, instance_id: str) -> None:
        """Power on a defined instance; a paused one is resumed.

        Idempotent: already running is no error. Raises `InstanceNotFound`.
        """
        ...

    async def stop(self, instance_id: str, *, grace_period: float | None = None) -> None:
        """Shut the instance down: ask the guest (ACPI), then force it off after
        `grace_period` seconds (the driver's default when None; 0 forces at once).
        Idempotent: already off is no error. Raises `InstanceNotFound`.
        """
        ...

    async def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        """Restart the guest; soft asks the guest, hard powers it off and on.

        A stopped instance is started, so the postcondition is always "running".
        Raises `InstanceNotFound`.
        """
        ...

    async def redefine(self, instance_id: str, *, vcpus: int, ram_mb: int) -> None:
        """Define the stopped instance again with `vcpus` and `ram_mb` (a cold resize), its
        disks and NICs as they are. Raises `DriverError` if it runs (nothing changed then),
        `InstanceNotFound`. If this fails, the old definition stays.
        """
        ...

    async def destroy(self, instance_id: str) -> None:
        """Power off (forced: the instance is being deleted) and undefine.

        Idempotent: a missing instance is no error. Disks and taps are left alone; they
        belong to the storage and network services.
        """
        ...

    async def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        """Add a disk to the instance's definition and, if it runs, hot-plug it.

        Idempotent: the same disk already at that target is no error; a different one raises
        `DiskConflict`. On a running instance raises `OperationNotSupported` unless
        `capabilities().live_disk_attach`; then nothing changed. Raises `InstanceNotFound`.
        """
        ...

    async def detach_disk(self, instance_id: str, target_dev: str) -> None:
        """Remove the disk at `target_dev` from the definition and, if running, unplug it.

        A live unplug needs the guest's consent and may still be pending on return (see
        `attached_disks`); calling again asks the guest again. Idempotent: no disk at that
        target is no error. The same capability rule as `attach_disk` applies. Raises
        `InstanceNotFound`.
        """
        ...

    async def resize_disk(self, instance_id: str, target_dev: str, size_bytes: int) -> None:
        """Tell a running instance that the disk at `target_dev` is now `size_bytes` long
        (its volume was grown underneath), so the guest sees the new size at once.

        Never shrinks: a size not above what the guest sees already is no change (a growth
        re-decided after a crash may be older than the last one carried out, and the
        hypervisor would cut the volume to it). An instance that is not running has nothing
        to be told: its next start opens the disk at its size. On a running instance raises
        `OperationNotSupported` unless `capabilities().live_disk_attach`, and `DriverError`
        when no disk is at `target_dev`. Raises `InstanceNotFound`.
        """
        ...

    async def attached_disks(self, instance_id: str) -> list[str]:
        """Target devices of the instance's disks, sorted: as the guest sees them if running,
        else as defined. Raises `InstanceNotFound`."""
        ...

    async def usage(self) -> list[UsageSample]:
        """One sample per active Virga-managed instance: running, paused or shutting down,
        as each still holds its memory.

        An instance that stops or disappears while being sampled is left out. Counters the
        hypervisor cannot report read as zero; any other failure raises.
        """
        ...

    async def migrate_live(
        self,
        instance_id: str,
        destination_uri: str,
        migration_address: str,
        *,
        options: MigrationOptions | None = None,
        on_progress: Callable[[MigrationProgress], None] | None = None,
    ) -> MigrationResult:
        """Move the running instance to another host while it runs; return once it runs
        there and its definition is gone from here.

        `destination_uri` is how this host's hypervisor reaches the other's (libvirt:
        `qemu+tcp://<address>/system`), `migration_address` where the memory is sent
        (`tcp://<address>[:port]`). Its disks must be shared (RBD). `on_progress` is called
        with each sample (`options.poll_interval`). Raises `MigrationFailed` when it did not
        happen, `MigrationAborted` when it ran out of `options.timeout`: in both cases the
        instance still runs here. Raises `InstanceNotFound` when the instance is not here,
        which is also what a repeated call after a success finds: the caller asks the
        destination whether the instance arrived.
        """
        ...

    async def migration_progress(self, instance_id: str) -> MigrationProgress | None:
        """The running migration's progress, or None when none runs. Raises
        `InstanceNotFound`."""
        ...

    async def runs_at(self, destination_uri: str, instance_id: str) -> bool:
        """Whether the instance runs on the host `migrate_live` reaches at `destination_uri`
        (what a repeated migration that finds it gone from here asks). Raises
        `HypervisorUnavailable` when that host cannot be asked."""
        ...

    async def open_console(self, instance_id: str) -> ConsoleStream:
        """The serial console of a running instance. A session already open on it is taken
        over (its stream ends), as `virsh console --force` does. InstanceNotFound without the
        domain; DriverError when it is not running or has no serial console."""
        ...

    def guest_events(self) -> AsyncIterator[GuestEvent]:
        """The hypervisor's reports of Virga domains changing power state, as they happen,
        for as long as the caller iterates (each call listens anew).

        `PowerChanged.cause` says why a domain is off (`shutdown`: the guest powered itself
        off; `destroyed`; `crashed`). When the hypervisor goes away the stream waits and
        reconnects with backoff, then yields `Reconnected`; it never raises for an outage.
        """
        ...
