"""How one compute agent is set up: its host's identity, hypervisor and cadences."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

from virga_compute.ceph_access import CephSettings, settings_from_env
from virga_compute.core.spec import DirectKernelBoot
from virga_runtime.env import DEFAULT_NAMESPACE, Env

DomainType = Literal["qemu", "kvm", "test"]
"""The libvirt <domain type> of every domain this host defines (`DomainSettings`)."""

RestartPolicy = Literal["restart", "report"]
"""What reconciliation at start does when a domain disagrees with the log.

`restart`: the log wins; a lost domain is spawned again, a domain found shut off that should
run is started, one found running that should be stopped is stopped. `report`: the
hypervisor wins; the agent only records what it found (InstanceDomainLost, InstanceStopped,
InstanceStarted) and leaves the domains as they are.
"""


_CEPH_VARIABLES = (
    "VIRGA_CEPH_CONF",
    "VIRGA_CEPH_MONITORS",
    "VIRGA_CEPH_POOL",
    "VIRGA_CEPH_USER",
    "VIRGA_CEPH_KEYRING",
    "VIRGA_CEPH_SECRET_UUID",
)


def _direct_boot(env: Env) -> DirectKernelBoot | None:
    kernel = env.text("VIRGA_GUEST_KERNEL")
    if kernel is None:
        return None
    return DirectKernelBoot(
        kernel=kernel,
        initrd=env.text("VIRGA_GUEST_INITRD"),
        cmdline=env.text("VIRGA_GUEST_CMDLINE") or "console=ttyS0",
    )


@dataclass(frozen=True, slots=True)
class ComputeConfig:
    """Settings of the compute agent on one hypervisor host."""

    host: str
    """This host's name: the scheduler's placement target and the agent's producer suffix."""
    rack: str = "default"
    """Rack the host sits in (server groups with rack scope spread over racks)."""
    zone: str = "default"
    """Availability zone of the host."""
    traits: tuple[str, ...] = ()
    """Capabilities the scheduler can require (`ssd`, `gpu`...)."""
    libvirt_uri: str = "test:///default"
    """Hypervisor connection; `memory://` selects the in-process driver (tests, demos)."""
    domain_type: DomainType = "qemu"
    """<domain type>: `qemu` (TCG), `kvm` or `test`."""
    instances_path: str = "/var/lib/virga/instances"
    """Local directory for instance files; its filesystem size is reported as disk_gb."""
    config_drive_path: str | None = None
    """Directory of the config drive images of this host's instances (`virga-<id>.iso`, each
    removed with its domain); None: `config-drives/` under `instances_path`."""
    heartbeat_seconds: float = 10.0
    """Interval of HostHeartbeat events."""
    usage_seconds: float = 60.0
    """Interval of UsageSampled events (one per running instance each interval)."""
    restart_policy: RestartPolicy = "restart"
    stop_grace_seconds: float = 60.0
    """How long a stop waits for the guest's ACPI shutdown before forcing it off."""
    power_sync_seconds: float = 30.0
    """Interval of the power-state sync: every domain's state is compared with the log's, as a
    backstop for libvirt lifecycle events (which report a guest's own stop within a second)."""
    http_port: int | None = None
    """Port for /healthz and /metrics; None serves nothing."""
    namespace: str = DEFAULT_NAMESPACE
    """Topic namespace, as `KafkaSettings.namespace`."""
    ceph: CephSettings | None = None
    """Where guests find their volumes; None: only instances without volumes run here."""
    host_lease_seconds: float = 15.0
    """How long this host's lease outlives a crashed agent (`virga_runtime.lease`): an agent
    started with the same host name before then refuses to start if the lease is renewed."""
    direct_boot: DirectKernelBoot | None = None
    """Boot every instance from this kernel instead of its boot disk's loader: for test and
    demo clouds whose images carry no boot loader (their volumes are still attached)."""
    console_port: int | None = None
    """Port of the console server (`virga_compute.console`), which the gateway relays tenants'
    serial consoles to; None serves no console."""
    console_listen: str = "127.0.0.1"
    """Address the console server listens on."""
    console_address: str | None = None
    """Address the gateway reaches the console server at, announced in HostRegistered; None:
    `console_listen`."""
    console_ticket_wait_seconds: float = 5.0
    """How long a session waits for its ticket to reach this agent's fold: the gateway
    appended it a moment before, to a topic the agent reads."""
    console_log_key: str | None = field(default=None, repr=False)
    """The key the gateway shows to read a console log (`console/server.py`); None: this
    agent serves no console log."""
    console_log_dir: str | None = None
    """Directory of the guests' serial console logs (`virga-<id>.log`, written by virtlogd);
    None: `console/` under `instances_path`."""

    migration_uri: str | None = None
    """How peers' hypervisors reach this one to live-migrate guests here (libvirt:
    `qemu+tcp://<address>/system`), announced in HostRegistered; None: this host receives no
    live migrations (the scheduler never picks it as a destination)."""
    migration_address: str | None = None
    """Where peers' QEMU sends a migrating guest's memory (`tcp://<address>[:port]`),
    announced in HostRegistered; None: the host of `migration_uri`."""
    migration_timeout_seconds: float = 300.0
    """A live migration from this host still running after this long is aborted (the guest
    runs on here): shorter than the scheduler's `migrate` step deadline (360 s)."""

    @property
    def console_endpoint(self) -> str | None:
        """`host:port` announced to the gateway; None without a console server."""
        if self.console_port is None:
            return None
        return f"{self.console_address or self.console_listen}:{self.console_port}"

    @property
    def console_log_path(self) -> str:
        return self.console_log_dir or f"{self.instances_path.rstrip('/')}/console"

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() or c == "/" for c in self.host):
            raise ValueError(f"bad host name {self.host!r}")
        intervals = (self.heartbeat_seconds, self.usage_seconds, self.host_lease_seconds)
        if min(*intervals, self.power_sync_seconds, self.migration_timeout_seconds) <= 0:
            raise ValueError(
                "heartbeat_seconds, usage_seconds, host_lease_seconds, power_sync_seconds and"
                " migration_timeout_seconds must be positive"
            )
        if self.restart_policy not in get_args(RestartPolicy):
            raise ValueError(f"restart_policy must be one of {get_args(RestartPolicy)}")
        if self.domain_type not in get_args(DomainType):
            raise ValueError(f"domain_type must be one of {get_args(DomainType)}")

    @property
    def tick_seconds(self) -> float:
        """The runtime's tick: often enough for both cadences."""
        return min(self.heartbeat_seconds, self.usage_seconds)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ComputeConfig:
        """Read VIRGA_HOST (required), VIRGA_RACK, VIRGA_ZONE, VIRGA_TRAITS (comma list),
        VIRGA_LIBVIRT_URI, VIRGA_DOMAIN_TYPE, VIRGA_INSTANCES_PATH, VIRGA_CONFIG_DRIVE_PATH,
        VIRGA_HEARTBEAT_SECONDS,
        VIRGA_USAGE_SECONDS, VIRGA_RESTART_POLICY, VIRGA_STOP_GRACE_SECONDS, VIRGA_HTTP_PORT,
        VIRGA_HOST_LEASE_SECONDS, VIRGA_COMPUTE_POWER_SYNC_SECONDS,
        VIRGA_NAMESPACE, the VIRGA_CEPH_* settings (`ceph_access.settings_from_env`) and
        VIRGA_GUEST_KERNEL, VIRGA_GUEST_INITRD, VIRGA_GUEST_CMDLINE (`direct_boot`),
        VIRGA_CONSOLE_PORT, VIRGA_CONSOLE_LISTEN, VIRGA_CONSOLE_ADDRESS,
        VIRGA_CONSOLE_TICKET_WAIT_SECONDS, VIRGA_CONSOLE_LOG_DIR, VIRGA_CONSOLE_LOG_KEY,
        VIRGA_MIGRATION_URI, VIRGA_MIGRATION_ADDRESS, VIRGA_MIGRATION_TIMEOUT_SECONDS; raise
        SystemExit naming a bad one."""
        env = Env(environ)
        get, number = env.text, env.number
        host = get("VIRGA_HOST")
        if host is None:
            raise SystemExit("VIRGA_HOST must name this hypervisor host")
        uri = get("VIRGA_LIBVIRT_URI") or "test:///default"
        traits = [t.strip() for t in (get("VIRGA_TRAITS") or "").split(",")]
        try:
            return cls(
                host=host,
                rack=get("VIRGA_RACK") or "default",
                zone=get("VIRGA_ZONE") or "default",
                traits=tuple(dict.fromkeys(t for t in traits if t)),
                libvirt_uri=uri,
                domain_type=get("VIRGA_DOMAIN_TYPE")  # type: ignore[arg-type]
                or ("test" if uri.startswith("test:") else "qemu"),
                instances_path=get("VIRGA_INSTANCES_PATH") or "/var/lib/virga/instances",
                config_drive_path=get("VIRGA_CONFIG_DRIVE_PATH"),
                heartbeat_seconds=number("VIRGA_HEARTBEAT_SECONDS", 10.0),
                usage_seconds=number("VIRGA_USAGE_SECONDS", 60.0),
                restart_policy=get("VIRGA_RESTART_POLICY") or "restart",  # type: ignore[arg-type]
                stop_grace_seconds=number("VIRGA_STOP_GRACE_SECONDS", 60.0),
                power_sync_seconds=number("VIRGA_COMPUTE_POWER_SYNC_SECONDS", 30.0),
                http_port=env.port("VIRGA_HTTP_PORT"),
                host_lease_seconds=number("VIRGA_HOST_LEASE_SECONDS", 15.0),
                namespace=env.namespace(),
                ceph=settings_from_env(
                    {"VIRGA_HOST": host} | {k: v for k in _CEPH_VARIABLES if (v := get(k) or "")}
                ),
                direct_boot=_direct_boot(env),
                console_port=env.port("VIRGA_CONSOLE_PORT"),
                console_listen=get("VIRGA_CONSOLE_LISTEN") or "127.0.0.1",
                console_address=get("VIRGA_CONSOLE_ADDRESS"),
                console_ticket_wait_seconds=number("VIRGA_CONSOLE_TICKET_WAIT_SECONDS", 5.0),
                console_log_dir=get("VIRGA_CONSOLE_LOG_DIR"),
                console_log_key=get("VIRGA_CONSOLE_LOG_KEY"),
                migration_uri=get("VIRGA_MIGRATION_URI"),
                migration_address=get("VIRGA_MIGRATION_ADDRESS"),
                migration_timeout_seconds=number("VIRGA_MIGRATION_TIMEOUT_SECONDS", 300.0),
            )
        except ValueError as exc:
            raise SystemExit(f"bad compute agent setting: {exc}") from None
