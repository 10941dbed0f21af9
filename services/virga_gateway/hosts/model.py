"""The projection's records of compute hosts: capacity, claims held on them, state, ratios."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_events.catalog import Flavor


class Resources(msgspec.Struct):
    vcpus: int = 0
    ram_mb: int = 0
    disk_gb: int = 0

    def add(self, flavor: Flavor, sign: int = 1) -> None:
        self.vcpus += sign * flavor.vcpus
        self.ram_mb += sign * flavor.ram_mb
        self.disk_gb += sign * flavor.disk_gb


class Ratios(msgspec.Struct, frozen=True):
    cpu: float
    ram: float
    disk: float


DrainStatus = Literal["DRAINING", "DRAINED", "FAILED"]


class Drain(msgspec.Struct, kw_only=True):
    """The host's latest drain (the scheduler's `host-drain` flow) and where it stands."""

    id: str
    status: DrainStatus = "DRAINING"
    instances: list[str] = msgspec.field(default_factory=list)
    """The running instances it moves, listed when it started (empty until the scheduler
    started it)."""
    stopped: list[str] = msgspec.field(default_factory=list)
    """Stopped instances it leaves placed on the host (they run nothing)."""
    moving: list[str] = msgspec.field(default_factory=list)
    moved: list[str] = msgspec.field(default_factory=list)
    unmoved: list[str] = msgspec.field(default_factory=list)
    """Instances that could not move (no valid host, the migration failed): they run on."""
    reason: str = ""


class Host(msgspec.Struct, kw_only=True):
    """A compute host; a stub (not listed) until its agent's HostRegistered is folded."""

    name: str
    registered: bool = False
    rack: str = ""
    zone: str = ""
    capacity: Resources = msgspec.field(default_factory=Resources)
    traits: tuple[str, ...] = ()
    allocated: Resources = msgspec.field(default_factory=Resources)
    """Sum of the flavors of the claims the scheduler holds on this host."""
    state: Literal["up", "down"] = "up"
    state_at: datetime | None = None
    """Event time of the fact `state` comes from: the newest of them wins, in any order."""
    enabled: bool = True
    disabled_reason: str = ""
    last_heartbeat_at: datetime | None = None
    console_endpoint: str | None = None
    """`host:port` of its agent's console server (HostRegistered); None: it serves none."""
    receives_migrations: bool = False
    """Its agent announced a migration URI (HostRegistered): it can receive live migrations."""
    drain: Drain | None = None
    """Its latest drain, if it was ever drained."""
