"""An in-process `ComputeDriver` with libvirt's semantics, for fast tests of the compute agent.

It passes the same contract suite as `LibvirtDriver`, and adds hooks a real hypervisor
cannot offer on demand: foreign domains, guest crashes, failures and an outage.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from virga_compute.core.power import PowerChanged
from virga_compute.core.spec import DiskSpec, DomainInfo, DomainState, InstanceSpec
from virga_compute.drivers.base import (
    ConsoleStream,
    DiskConflict,
    DriverCapabilities,
    DriverError,
    GuestEvent,
    HostCapacity,
    HypervisorUnavailable,
    InstanceNotFound,
    MigrationAborted,
    MigrationFailed,
    MigrationOptions,
    MigrationProgress,
    MigrationResult,
    OperationNotSupported,
    Reconnected,
    UsageSample,
)
from virga_compute.drivers.config_drive import drive_files
from virga_compute.drivers.domain_xml import domain_name, source_key
from virga_compute.drivers.echo_console import EchoConsole
from virga_events.catalog.compute import StopCause

_ZERO_USAGE = UsageSample("", 0, 0, 0, 0, 0, 0)
# States with a guest process behind them, where a disk change would have to be hot-plugged.
_ACTIVE = frozenset({DomainState.RUNNING, DomainState.PAUSED, DomainState.SHUTTING_DOWN})


@dataclass
class _Domain:
    instance_id: str | None
    """None for a domain Virga does not manage."""
    state: DomainState
    ram_mb: int = 0
    vcpus: int = 0
    disks: dict[str, DiskSpec] = field(default_factory=dict)
    usage: UsageSample = _ZERO_USAGE
    disk_sizes: dict[str, int] = field(default_factory=dict)
    """Target -> the size a running guest was last told of (`resize_disk`)."""
    cause: StopCause | None = None
    """Why it went off on its own (`power_off_outside`); None once started again."""
    config_drive: dict[str, bytes] | None = None
    """The files of its config drive, as the libvirt driver would write them; None: none."""


class MemoryComputeDriver:
    """`ComputeDriver` over a dict of domains keyed by domain name, as libvirt keys them."""

    def __init__(
        self,
        capacity: HostCapacity | None = None,
        *,
        live_disk_attach: bool = True,
    ) -> None:
        self._capacity = capacity if capacity is not None else HostCapacity(8, 16384, 100)
        self._capabilities = DriverCapabilities(live_disk_attach=live_disk_attach)
        self._domains: dict[str, _Domain] = {}
        self._failures: dict[str, DriverError] = {}
        self._available = True
        self._listeners: list[asyncio.Queue[GuestEvent]] = []
        self._peers: dict[str, MemoryComputeDriver] = {}
        self._stalled = False
        self._consoles: dict[str, EchoConsole] = {}

    # -- test hooks -----------------------------------------------------------------------

    def add_foreign_domain(self, name: str, *, running: bool = True) -> None:
        """A domain someone else defined on the host; Virga must neither list nor touch it."""
        state = DomainState.RUNNING if running else DomainState.SHUTOFF
        self._domains[name] = _Domain(instance_id=None, state=state)

    def has_domain(self, name: str) -> bool:
        """Whether any domain (managed or not) has this name."""
        return name in self._domains

    def crash(self, instance_id: str) -> None:
        """The guest crashes (the definition's on_crash is 'destroy')."""
        self._require(instance_id).state = DomainState.CRASHED

    def power_off_outside(self, instance_id: str, cause: StopCause = "destroyed") -> None:
        """The guest goes off without Virga asking: it powers itself off (`shutdown`), is
        destroyed by hand (`destroyed`) or its process dies (`crashed`); `guest_events`
        reports it."""
        self._power_off(self._require(instance_id), cause)

    def hypervisor_restarted(self) -> None:
        """The hypervisor came back after an outage: `guest_events` says it reconnected."""
        self._report(Reconnected())

    def _report(self, event: GuestEvent) -> None:
        for listener in self._listeners:
            listener.put_nowait(event)

    def fail_next(self, operation: str, error: DriverError) -> None:
        """The next call of `operation` (a method name) raises `error` and changes nothing."""
        self._failures[operation] = error

    def set_available(self, available: bool) -> None:
        """Simulate the hypervisor going away (every call raises) and coming back."""
        self._available = available

    def add_peer(self, uri: str, peer: MemoryComputeDriver) -> None:
        """Another host that `migrate_live` reaches at `uri`; any other URI is unreachable."""
        self._peers[uri] = peer

    def stall_migrations(self, stalled: bool = True) -> None:
        """Migrations never converge (a guest dirtying memory faster than it is sent)."""
        self._stalled = stalled

    def add_usage(self, instance_id: str, **counters: int) -> None:
        """Advance a running instance's counters, e.g. `add_usage(id, cpu_time_ns=10)`."""
        domain = self._require(instance_id)
        current = dataclasses.asdict(domain.usage)
        domain.usage = dataclasses.replace(
            domain.usage, **{name: current[name] + value for name, value in counters.items()}
        )

    # -- helpers --------------------------------------------------------------------------

    def _enter(self, operation: str) -> None:
        if not self._available:
            raise HypervisorUnavailable("memory hypervisor is marked unavailable")
        failure = self._failures.pop(operation, None)
        if failure is not None:
            raise failure

    def _lookup(self, instance_id: str) -> _Domain | None:
        domain = self._domains.get(domain_name(instance_id))
        return domain if domain is not None and domain.instance_id == instance_id else None

    def _require(self, instance_id: str) -> _Domain:
        domain = self._lookup(instance_id)
        if domain is None:
            raise InstanceNotFound(instance_id)
        return domain

    def _power_on(self, domain: _Domain) -> None:
        if domain.state in (DomainState.RUNNING, DomainState.PAUSED):
            domain.state = DomainState.RUNNING  # a paused guest is resumed
            return
        # A fresh QEMU process: its counters start from zero, as libvirt's do.
        domain.usage = _ZERO_USAGE
        domain.state, domain.cause = DomainState.RUNNING, None
        self._changed(domain)

    def _power_off(self, domain: _Domain, cause: StopCause) -> None:
        domain.state, domain.cause = DomainState.SHUTOFF, cause
        self._changed(domain)

    def _changed(self, domain: _Domain, state: DomainState | None = None) -> None:
        """Report a power change to `guest_events`, as libvirt's lifecycle events do."""
        if domain.instance_id is not None:
            now = datetime.now(UTC)
            seen = state or domain.state
            self._report(PowerChanged(domain.instance_id, seen, domain.cause, now))

    def _check_live_change(self, domain: _Domain) -> None:
        if domain.state in _ACTIVE and not self._capabilities.live_disk_attach:
            raise OperationNotSupported("memory hypervisor has no live disk hot-plug")

    # -- ComputeDriver --------------------------------------------------------------------

    async def connect(self) -> None:
        self._enter("connect")

    async def close(self) -> None:
        """Nothing to release; instances keep running, as with libvirt."""

    async def guest_events(self) -> AsyncIterator[GuestEvent]:
        """What `power_off_outside` and `hypervisor_restarted` report, from this call on."""
        queue: asyncio.Queue[GuestEvent] = asyncio.Queue()
        self._listeners.append(queue)
        try:
            while True:
                yield await queue.get()
        finally:
            self._listeners.remove(queue)

    async def capabilities(self) -> DriverCapabilities:
        self._enter("capabilities")
        return self._capabilities

    async def capacity(self) -> HostCapacity:
        self._enter("capacity")
        return self._capacity

    async def list_instances(self) -> list[DomainInfo]:
        self._enter("list_instances")
        return sorted(
            (
                DomainInfo(d.instance_id, d.state, d.cause)
                for d in self._domains.values()
                if d.instance_id
            ),
            key=lambda info: info.instance_id,
        )

    async def get_info(self, instance_id: str) -> DomainInfo:
        self._enter("get_info")
        domain = self._lookup(instance_id)
        return DomainInfo(instance_id, DomainState.MISSING if domain is None else domain.state)

    async def attached_disks(self, instance_id: str) -> list[str]:
        self._enter("attached_disks")
        return sorted(self._require(instance_id).disks)

    async def usage(self) -> list[UsageSample]:
        self._enter("usage")
        samples = []
        for domain in self._domains.values():
            if domain.instance_id is not None and domain.state in _ACTIVE:
                samples.append(
                    dataclasses.replace(
                        domain.usage, instance_id=domain.instance_id, memory_kb=domain.ram_mb * 1024
                    )
                )
        return sorted(samples, key=lambda sample: sample.instance_id)

    async def spawn(self, spec: InstanceSpec, *, start: bool = True) -> None:
        self._enter("spawn")
        name = domain_name(spec.instance_id)
        existing = self._domains.get(name)
        if existing is not None:
            if existing.instance_id != spec.instance_id:
                raise DriverError(f"domain {name!r} exists but is not managed by Virga")
            if start:
                self._power_on(existing)
            return
        domain = _Domain(
            instance_id=spec.instance_id,
            state=DomainState.SHUTOFF,
            ram_mb=spec.ram_mb,
            vcpus=spec.vcpus,
            disks={disk.target_dev: disk for disk in spec.disks},
            config_drive=None if spec.config_drive is None else drive_files(spec),
        )
        if start:
            self._power_on(domain)
        self._domains[name] = domain

    async def start(self, instance_id: str) -> None:
        self._enter("start")
        self._power_on(self._require(instance_id))

    async def stop(self, instance_id: str, *, grace_period: float | None = None) -> None:
        self._enter("stop")
        domain = self._require(instance_id)
        if domain.state in _ACTIVE:  # the guest obeys ACPI, or is forced off at once
            self._power_off(domain, "destroyed" if grace_period == 0 else "shutdown")

    async def redefine(self, instance_id: str, *, vcpus: int, ram_mb: int) -> None:
        self._enter("redefine")
        domain = self._require(instance_id)
        if domain.state in _ACTIVE:
            raise DriverError(f"instance {instance_id} runs: stop it before it is resized")
        domain.vcpus, domain.ram_mb = vcpus, ram_mb

    def defined_size(self, instance_id: str) -> tuple[int, int]:
        """The domain's vCPUs and memory (MiB), as defined (for tests)."""
        domain = self._require(instance_id)
        return domain.vcpus, domain.ram_mb

    async def reboot(self, instance_id: str, *, hard: bool = False) -> None:
        self._enter("reboot")
        domain = self._require(instance_id)
        if hard and domain.state in _ACTIVE:
            self._power_off(domain, "destroyed")
        self._power_on(domain)

    async def migrate_live(
        self,
        instance_id: str,
        destination_uri: str,
        migration_address: str,
        *,
        options: MigrationOptions | None = None,
        on_progress: Callable[[MigrationProgress], None] | None = None,
    ) -> MigrationResult:
        """Moves the domain to the peer at `destination_uri` (`add_peer`), at once."""
        options = options if options is not None else MigrationOptions()
        self._enter("migrate_live")
        domain = self._require(instance_id)
        name = domain_name(instance_id)
        if domain.state is not DomainState.RUNNING:
            raise MigrationFailed(f"{instance_id} is not running: nothing to migrate live")
        peer = self._peers.get(destination_uri)
        if peer is None or not peer._available:
            raise MigrationFailed(f"{instance_id}: cannot reach {destination_uri}")
        if peer.has_domain(name):
            raise MigrationFailed(f"{destination_uri} already has a domain {name}")
        loop = asyncio.get_running_loop()
        started = loop.time()
        progress = MigrationProgress(
            instance_id, 0, domain.ram_mb << 20, 0, domain.ram_mb << 20, 0, 1
        )
        while self._stalled:
            if on_progress is not None:
                on_progress(progress)
            if loop.time() - started > options.timeout:
                raise MigrationAborted(f"{instance_id}: not done within {options.timeout} s")
            await asyncio.sleep(options.poll_interval)
        del self._domains[name]
        peer._domains[name] = domain
        return MigrationResult(seconds=loop.time() - started, last_progress=None)

    async def runs_at(self, destination_uri: str, instance_id: str) -> bool:
        self._enter("runs_at")
        peer = self._peers.get(destination_uri)
        if peer is None or not peer._available:
            raise HypervisorUnavailable(f"cannot reach {destination_uri}")
        domain = peer._domains.get(domain_name(instance_id))
        return domain is not None and domain.state is DomainState.RUNNING

    async def migration_progress(self, instance_id: str) -> MigrationProgress | None:
        self._enter("migration_progress")
        self._require(instance_id)
        return None

    async def destroy(self, instance_id: str) -> None:
        self._enter("destroy")
        if (domain := self._lookup(instance_id)) is not None:
            del self._domains[domain_name(instance_id)]
            if (console := self._consoles.pop(instance_id, None)) is not None:
                await console.close()
            domain.cause = None
            self._changed(domain, DomainState.MISSING)

    async def open_console(self, instance_id: str) -> ConsoleStream:
        """An echo console (test:///default has no consoles): what is typed comes back."""
        self._enter("open_console")
        if self._require(instance_id).state != DomainState.RUNNING:
            raise DriverError(f"{instance_id}: not running, no console")
        previous = self._consoles.pop(instance_id, None)
        if previous is not None:  # taken over, as `virsh console --force`
            await previous.close()
        console = self._consoles[instance_id] = EchoConsole(b"virga-memory-console\r\n")
        return console

    async def attach_disk(self, instance_id: str, disk: DiskSpec) -> None:
        self._enter("attach_disk")
        domain = self._require(instance_id)
        present = domain.disks.get(disk.target_dev)
        if present is not None:
            if source_key(present.source) == source_key(disk.source):
                return
            raise DiskConflict(f"{instance_id}: {disk.target_dev} already holds another disk")
        self._check_live_change(domain)
        domain.disks[disk.target_dev] = disk

    async def resize_disk(self, instance_id: str, target_dev: str, size_bytes: int) -> None:
        self._enter("resize_disk")
        domain = self._require(instance_id)
        if domain.state not in _ACTIVE:
            return
        self._check_live_change(domain)
        if target_dev not in domain.disks:
            raise DriverError(f"{instance_id}: no disk at {target_dev}")
        domain.disk_sizes[target_dev] = max(size_bytes, domain.disk_sizes.get(target_dev, 0))

    def config_drive(self, instance_id: str) -> dict[str, bytes] | None:
        """The files of the instance's config drive (path → content); None without one."""
        return self._require(instance_id).config_drive

    def disk_size(self, instance_id: str, target_dev: str) -> int | None:
        """What the running guest was last told the disk's size is; None if never."""
        return self._require(instance_id).disk_sizes.get(target_dev)

    async def detach_disk(self, instance_id: str, target_dev: str) -> None:
        self._enter("detach_disk")
        domain = self._require(instance_id)
        if target_dev not in domain.disks:
            return
        self._check_live_change(domain)
        del domain.disks[target_dev]
