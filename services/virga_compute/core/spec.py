"""The values that cross the driver boundary: what an instance is made of (`InstanceSpec`,
its disks and NICs) and what the hypervisor says about it (`DomainInfo`).

Values are validated on construction, so an invalid spec fails in the agent with a clear
message instead of as a half-defined domain inside the hypervisor. Pure: `decide` builds the
specs, the reconciliation plan reads the states, and the drivers take and report both.
"""

from __future__ import annotations

import base64
import binascii
import enum
import ipaddress
import re
import uuid
from dataclasses import dataclass

from virga_events.catalog.compute import StopCause

# Instance ids become part of the domain name, which QEMU also uses in file paths and
# libvirt rejects with '/': keep them to characters that are safe everywhere.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# Only virtio disks: the guests Virga boots all have virtio_blk, and one bus keeps
# target names unambiguous.
_TARGET_DEV = re.compile(r"vd[a-z]{1,2}")
# Linux interface names: at most 15 bytes (IFNAMSIZ - 1).
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,14}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# '@' would name an RBD snapshot and '/' a namespace, so neither may hide in a name.
_RBD_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True, slots=True)
class CephMonitor:
    """One Ceph monitor address that QEMU's librbd contacts."""

    host: str
    """Host name or IP address of the monitor."""
    port: int = 6789
    """TCP port of the monitor (6789 for msgr v1, which QEMU's librbd always speaks)."""

    def __post_init__(self) -> None:
        _require(bool(self.host) and not any(c.isspace() for c in self.host), "bad monitor host")
        _require(0 < self.port < 65536, f"monitor port out of range: {self.port}")


@dataclass(frozen=True, slots=True)
class RbdSource:
    """A Ceph RBD image opened by QEMU over the network."""

    pool: str
    """Ceph pool holding the image."""
    image: str
    """Image name inside the pool (a volume id, never a user-chosen name)."""
    monitors: tuple[CephMonitor, ...]
    """Monitors to bootstrap from; at least one."""
    auth_user: str | None = None
    """cephx user (without the 'client.' prefix); None when the cluster runs without auth."""
    secret_uuid: str | None = None
    """UUID of the libvirt secret holding that user's key; set exactly when auth_user is."""

    def __post_init__(self) -> None:
        _require(_RBD_NAME.fullmatch(self.pool) is not None, f"bad RBD pool {self.pool!r}")
        _require(_RBD_NAME.fullmatch(self.image) is not None, f"bad RBD image {self.image!r}")
        _require(len(self.monitors) > 0, "an RBD disk needs at least one monitor")
        _require(
            (self.auth_user is None) == (self.secret_uuid is None),
            "auth_user and secret_uuid go together",
        )
        if self.auth_user is not None:
            _require(_RBD_NAME.fullmatch(self.auth_user) is not None, "bad cephx user")
        if self.secret_uuid is not None:
            uuid.UUID(self.secret_uuid)  # raises ValueError on a malformed UUID


@dataclass(frozen=True, slots=True)
class FileSource:
    """A disk image file on the hypervisor host (tests and local scratch disks)."""

    path: str
    """Absolute path of a raw image file."""

    def __post_init__(self) -> None:
        _require(self.path.startswith("/"), f"disk file path must be absolute: {self.path!r}")


@dataclass(frozen=True, slots=True)
class DiskSpec:
    """One block device of an instance."""

    target_dev: str
    """Device name the guest sees on the virtio bus: vda, vdb, ..."""
    source: RbdSource | FileSource
    """Where the bytes live."""
    serial: str | None = None
    """Disk serial shown to the guest (/dev/disk/by-id/virtio-<serial>); the volume id."""

    def __post_init__(self) -> None:
        _require(_TARGET_DEV.fullmatch(self.target_dev) is not None, "target_dev must be vdX")
        if self.serial is not None:
            # QEMU truncates virtio-blk serials to 20 bytes; longer would be silently cut.
            _require(_RBD_NAME.fullmatch(self.serial) is not None, "bad disk serial")
            _require(len(self.serial) <= 20, "disk serial longer than 20 characters")


@dataclass(frozen=True, slots=True)
class NicSpec:
    """One virtio network interface of an instance."""

    mac: str
    """MAC address allocated by the network controller (lower case, colon separated)."""
    tap: str
    """Host-side tap device name, derived from the port id by the network agent."""
    bridge: str | None = None
    """Bridge libvirt plugs the tap into; None when the network agent made and wired the tap."""
    address: str | None = None
    """The guest's address with its prefix length (``10.0.0.5/24``), given to the guest in
    the domain definition (`guest_network`); None: the guest is told nothing."""
    gateway: str | None = None
    """The network's gateway address, given to the guest with `address`."""

    def __post_init__(self) -> None:
        if self.address is not None:
            ipaddress.ip_interface(self.address)  # raises ValueError on a malformed one
        if self.gateway is not None:
            ipaddress.ip_address(self.gateway)
        _require(_MAC.fullmatch(self.mac) is not None, f"bad MAC {self.mac!r}")
        _require(int(self.mac[:2], 16) & 1 == 0, f"MAC {self.mac} is multicast")
        _require(_IFNAME.fullmatch(self.tap) is not None, f"bad tap name {self.tap!r}")
        if self.bridge is not None:
            _require(_IFNAME.fullmatch(self.bridge) is not None, "bad bridge name")


@dataclass(frozen=True, slots=True)
class DirectKernelBoot:
    """Boot a kernel file directly instead of from the first disk (tiny test guests)."""

    kernel: str
    """Absolute path of the kernel image on the hypervisor host."""
    initrd: str | None = None
    """Absolute path of the initramfs, if any."""
    cmdline: str = ""
    """Kernel command line, e.g. 'console=ttyS0'."""

    def __post_init__(self) -> None:
        _require(self.kernel.startswith("/"), "kernel path must be absolute")
        _require(self.initrd is None or self.initrd.startswith("/"), "initrd must be absolute")


@dataclass(frozen=True, slots=True)
class ConfigDrive:
    """What the instance's config drive (ISO 9660, label `config-2`, OpenStack layout) tells
    the guest besides its id, name and NIC (from the `InstanceSpec`): strings only, so the
    spec stays journalable; the driver composes the files and writes the image."""

    availability_zone: str
    """The host's zone (meta_data.json's `availability_zone`)."""
    hostname: str | None = None
    """The guest's host name; None: the instance's name. Used for nothing but the drive."""
    key_name: str | None = None
    """The name the public keys go by in meta_data.json's `public_keys` (`default` when
    None: `virga_guestdata.metadata.keys_by_name`)."""
    public_keys: tuple[str, ...] = ()
    """OpenSSH public keys, as copied at request time."""
    user_data: str | None = None
    """The tenant's user data, base64 as sent; the drive holds it decoded."""
    project_id: str | None = None
    """The instance's tenant (meta_data.json's `project_id`); None: left out."""

    def __post_init__(self) -> None:
        if self.user_data is not None:
            self.user_data_bytes()  # raises ValueError on bad base64

    def user_data_bytes(self) -> bytes | None:
        """The user data as the guest reads it, or None without any."""
        if self.user_data is None:
            return None
        try:
            return base64.b64decode(self.user_data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"user_data is not base64: {exc}") from None


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything the driver needs to run one instance."""

    instance_id: str
    """Virga's instance id; the only id that crosses the driver boundary."""
    name: str
    """User-facing display name; recorded in the domain metadata, never in the domain name."""
    vcpus: int
    """Number of virtual CPUs."""
    ram_mb: int
    """Guest memory in MiB."""
    disks: tuple[DiskSpec, ...] = ()
    """Block devices; the first one boots unless `boot` says otherwise."""
    nics: tuple[NicSpec, ...] = ()
    """Network interfaces, in guest PCI order."""
    boot: DirectKernelBoot | None = None
    """Direct kernel boot; None to boot from the first disk."""
    config_drive: ConfigDrive | None = None
    """A config drive attached as a read-only CD-ROM; None for none."""

    def __post_init__(self) -> None:
        _require(_INSTANCE_ID.fullmatch(self.instance_id) is not None, "bad instance_id")
        _require(self.vcpus > 0, "vcpus must be positive")
        _require(self.ram_mb > 0, "ram_mb must be positive")
        targets = [d.target_dev for d in self.disks]
        _require(len(set(targets)) == len(targets), "duplicate disk target_dev")
        _require(len({n.mac for n in self.nics}) == len(self.nics), "duplicate NIC MAC")
        _require(len({n.tap for n in self.nics}) == len(self.nics), "duplicate tap name")


class DomainState(enum.Enum):
    """Power state of an instance as the hypervisor reports it."""

    RUNNING = "running"
    PAUSED = "paused"
    SHUTTING_DOWN = "shutting_down"
    SHUTOFF = "shutoff"
    CRASHED = "crashed"
    MISSING = "missing"
    """No domain for this instance on this host."""
    UNKNOWN = "unknown"
    """The hypervisor reports no state (libvirt's NOSTATE)."""


@dataclass(frozen=True, slots=True)
class DomainInfo:
    """What the hypervisor says about one instance."""

    instance_id: str
    """Virga's instance id."""
    state: DomainState
    """Current power state."""
    cause: StopCause | None = None
    """Why it is off, when the hypervisor says (libvirt's shutoff reason); else None."""
