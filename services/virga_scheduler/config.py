"""How the scheduler service is set up: placement policy, retries, liveness; from the env."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from virga_runtime.env import DEFAULT_NAMESPACE, Env
from virga_scheduler.core.placement import AllocationRatios, Weigher


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Settings of the scheduler service (a singleton: one writer of claims per deployment)."""

    weigher: Weigher = Weigher.SPREAD
    """Rank hosts that fit by most free (``spread``) or least free (``pack``)."""
    max_attempts: int = 3
    """Placements an instance gets in total: the first and the reschedules after failed spawns."""
    heartbeat_timeout_seconds: float = 30.0
    """A host not heard from for longer than this (its event time against the scheduler's
    clock) is marked down and gets nothing new."""
    server_group_wait_seconds: float = 60.0
    """How long a request naming a server group not seen yet is held before it fails."""
    tick_seconds: float = 5.0
    """How often time-driven checks run (down hosts, requests held too long); from the
    environment it defaults to a third of the heartbeat timeout, at most 5 s."""
    ratios: AllocationRatios = field(default_factory=AllocationRatios)
    """Allocation ratios of every host until an administrator sets others (AllocationRatiosSet)."""
    drain_parallel: int = 2
    """Live migrations a host drain runs at once (VIRGA_SCHEDULER_DRAIN_PARALLEL)."""
    auto_evacuate: frozenset[str] = frozenset()
    """Hosts whose instances are evacuated at once when the host is marked down, ``*`` for
    every host (VIRGA_SCHEDULER_AUTO_EVACUATE, comma-separated; default none)."""
    namespace: str = DEFAULT_NAMESPACE
    """Topic namespace, as ``KafkaSettings.namespace``."""
    http_port: int | None = None
    """Port for /healthz and /metrics; None serves nothing."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.drain_parallel < 1:
            raise ValueError(f"drain_parallel must be at least 1, got {self.drain_parallel}")
        for name in ("heartbeat_timeout_seconds", "server_group_wait_seconds", "tick_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SchedulerConfig:
        """Read VIRGA_SCHEDULER_WEIGHER (spread|pack), VIRGA_SCHEDULER_MAX_ATTEMPTS,
        VIRGA_HEARTBEAT_TIMEOUT, VIRGA_SERVER_GROUP_WAIT, VIRGA_SCHEDULER_TICK_SECONDS,
        VIRGA_SCHEDULER_DRAIN_PARALLEL, VIRGA_SCHEDULER_AUTO_EVACUATE,
        VIRGA_CPU_ALLOCATION_RATIO, VIRGA_RAM_ALLOCATION_RATIO, VIRGA_DISK_ALLOCATION_RATIO
        (seconds are numbers), VIRGA_NAMESPACE and VIRGA_HTTP_PORT; raise SystemExit naming
        a bad one."""
        env = Env(environ)
        get, number, whole = env.text, env.number, env.whole
        weigher = get("VIRGA_SCHEDULER_WEIGHER") or Weigher.SPREAD.value
        if weigher not in {w.value for w in Weigher}:
            raise SystemExit(f"VIRGA_SCHEDULER_WEIGHER must be spread or pack, got {weigher!r}")
        defaults = AllocationRatios()
        timeout = number("VIRGA_HEARTBEAT_TIMEOUT", 30.0)
        try:
            return cls(
                weigher=Weigher(weigher),
                max_attempts=whole("VIRGA_SCHEDULER_MAX_ATTEMPTS", 3),
                heartbeat_timeout_seconds=timeout,
                server_group_wait_seconds=number("VIRGA_SERVER_GROUP_WAIT", 60.0),
                # A silent host is noticed within a third of the timeout past it by default.
                tick_seconds=number("VIRGA_SCHEDULER_TICK_SECONDS", min(5.0, timeout / 3)),
                drain_parallel=whole("VIRGA_SCHEDULER_DRAIN_PARALLEL", 2),
                auto_evacuate=frozenset(
                    name.strip()
                    for name in (get("VIRGA_SCHEDULER_AUTO_EVACUATE") or "").split(",")
                    if name.strip()
                ),
                ratios=AllocationRatios(
                    cpu=number("VIRGA_CPU_ALLOCATION_RATIO", defaults.cpu),
                    ram=number("VIRGA_RAM_ALLOCATION_RATIO", defaults.ram),
                    disk=number("VIRGA_DISK_ALLOCATION_RATIO", defaults.disk),
                ),
                namespace=env.namespace(),
                http_port=env.port("VIRGA_HTTP_PORT"),
            )
        except ValueError as exc:
            raise SystemExit(f"bad scheduler setting: {exc}") from None
