"""What the compute agent's decisions ask for: the effects `decide` returns (pure data).

Each effect's `key` orders it: the effects of one key run in order, so an instance's spawn,
attachments and destroy never overtake each other. The handlers that carry them out over a
`ComputeDriver` are `effects.lifecycle` and `effects.attachments`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from virga_compute.config import RestartPolicy
from virga_compute.core.reconcile import Expected
from virga_compute.core.spec import DiskSpec, InstanceSpec
from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.common import Flavor
from virga_events.catalog.compute import StopCause

PowerActionName = Literal["start", "stop", "reboot"]
SpawnPhase = Literal["spawn", "start", "restart"]


@dataclass(frozen=True, slots=True)
class RegisterHost:
    """Report this host and its capacity (HostRegistered)."""

    host: str
    rack: str
    zone: str
    traits: tuple[str, ...]
    console_endpoint: str | None = None
    """`host:port` of the agent's console server, announced to the gateway."""
    migration_uri: str | None = None
    """How peers reach this host to live-migrate guests here; None: it receives none."""
    migration_address: str | None = None
    """Where peers send a migrating guest's memory; None: the host of `migration_uri`."""
    ceph: tuple[str, str] | None = None
    """(cephx user, secret UUID) this host's guests open their volumes with; None: no cephx."""

    @property
    def key(self) -> str:
        return f"host:{self.host}"


@dataclass(frozen=True, slots=True)
class MigrateLive:
    """Live-migrate a running instance to another host (InstanceMigrated, or
    InstanceMigrationFailed), answering step `step` of flow `flow_id`."""

    instance_id: str
    tenant_id: str | None
    host: str
    flow_id: str
    step: str
    destination: str
    destination_uri: str
    migration_address: str
    timeout: float
    """Seconds before the driver aborts it (`MigrationOptions.timeout`)."""
    destination_ceph: tuple[str, str] | None = None
    """(cephx user, secret UUID) the destination's guests open their volumes with (None: as
    here): the migrating guest's disks take them on there."""

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class Spawn:
    """Define and start an instance's domain (InstanceStarted, or InstanceFailed(phase))."""

    spec: InstanceSpec
    tenant_id: str | None
    host: str
    phase: SpawnPhase = "spawn"
    """`spawn` for a new placement (a failure leaves nothing behind and the instance leaves
    the host); `start` for a start request of an instance whose domain was lost."""

    @property
    def key(self) -> str:
        return self.spec.instance_id


@dataclass(frozen=True, slots=True)
class Rebuild:
    """Define and start an evacuated instance from its existing disks (InstanceStarted and
    InstanceRebuilt, or InstanceRebuildFailed with nothing left defined)."""

    spec: InstanceSpec
    tenant_id: str | None
    host: str
    flow_id: str
    step: str

    @property
    def key(self) -> str:
        return self.spec.instance_id


@dataclass(frozen=True, slots=True)
class RemoveStale:
    """Power off and undefine the domain of an instance evacuated from this host, which now
    runs elsewhere: no event (the instance is not this host's to report on)."""

    instance_id: str
    host: str

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class PowerAction:
    """Start, stop or reboot an instance's domain."""

    instance_id: str
    tenant_id: str | None
    host: str
    action: PowerActionName

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class Destroy:
    """Power off and undefine an instance's domain for good (InstanceDeleted, then a
    VolumeDetached for each volume it had attached)."""

    instance_id: str
    tenant_id: str | None
    host: str
    volumes: tuple[str, ...] = ()
    """Volumes attached (or being attached) to it: free again once the domain is gone."""

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class UsageDue:
    """One running instance whose usage period ends now."""

    instance_id: str
    tenant_id: str | None
    since: datetime | None
    """Start of its period (last sample or start); None if unknown (period 0)."""


@dataclass(frozen=True, slots=True)
class SampleUsage:
    """Read the counters of the host's instances once, emit one UsageSampled per due one."""

    host: str
    at: datetime
    """End of the period: the tick's time."""
    due: tuple[UsageDue, ...]

    @property
    def key(self) -> str:
        return f"usage:{self.host}"


@dataclass(frozen=True, slots=True)
class Reconcile:
    """Compare the log's instances with the host's domains and act per `policy`."""

    host: str
    policy: RestartPolicy
    expected: tuple[Expected, ...]
    leave_alone: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"reconcile:{self.host}"


@dataclass(frozen=True, slots=True)
class AttachVolume:
    """Make a volume a disk of the instance (VolumeAttached or VolumeAttachmentFailed)."""

    instance_id: str
    tenant_id: str | None
    host: str
    volume_id: str
    disk: DiskSpec

    @property
    def key(self) -> str:
        # The instance's key: an attach runs after the spawn and before the destroy decided
        # ahead of it.
        return self.instance_id


@dataclass(frozen=True, slots=True)
class DetachVolume:
    """Remove a volume's disk from the instance (VolumeDetached or VolumeAttachmentFailed)."""

    instance_id: str
    tenant_id: str | None
    host: str
    volume_id: str
    target_dev: str

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class GrowDisk:
    """Tell the running instance that the volume at `target_dev` is now `size_bytes` long."""

    instance_id: str
    volume_id: str
    target_dev: str
    size_bytes: int

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class Restart:
    """Start again a domain that stopped without Virga asking, as its restart policy says
    (InstanceRestarted, or InstanceFailed with phase `restart`); see `core.power`."""

    spec: InstanceSpec
    """How to spawn it again, should its domain be gone too."""
    tenant_id: str | None
    host: str
    cause: StopCause
    policy: InstanceRestartPolicy

    @property
    def key(self) -> str:
        return self.spec.instance_id


@dataclass(frozen=True, slots=True)
class StopForResize:
    """Stop the running guest for resize `flow_id` (InstanceResizeStopped, or
    InstanceResizeFailed)."""

    instance_id: str
    tenant_id: str | None
    host: str
    flow_id: str
    step: str

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class Redefine:
    """Define the stopped guest again with `flavor`, then start it if `start`
    (InstanceResized, or InstanceResizeFailed with the old definition in place)."""

    instance_id: str
    tenant_id: str | None
    host: str
    flow_id: str
    step: str
    flavor: Flavor
    start: bool

    @property
    def key(self) -> str:
        return self.instance_id


@dataclass(frozen=True, slots=True)
class MoveIn:
    """Define a resized instance moved here from its existing disks, started if `start`
    (InstanceResized, or InstanceResizeFailed with nothing left defined)."""

    spec: InstanceSpec
    tenant_id: str | None
    host: str
    flow_id: str
    step: str
    flavor: Flavor
    start: bool

    @property
    def key(self) -> str:
        return self.spec.instance_id


@dataclass(frozen=True, slots=True)
class RestartAfterResize:
    """Start again a guest a failed resize stopped (InstanceStarted, or InstanceFailed)."""

    instance_id: str
    tenant_id: str | None
    host: str

    @property
    def key(self) -> str:
        return self.instance_id
