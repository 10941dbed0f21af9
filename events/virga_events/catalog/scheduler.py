"""Facts the scheduler writes to `virga.scheduler`: placements, refusals, claims, host health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from virga_events.catalog.api import InstanceRestartPolicy
from virga_events.catalog.common import Flavor
from virga_events.registry import Event, event


@event("InstanceScheduled")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceScheduled(Event):
    """The instance was placed and its resources claimed on `host` (aggregate: instance id).

    Carries what the compute agent needs to build the instance, so agents read no other topic
    to boot it.
    """

    host: str
    rack: str
    zone: str
    attempt: int
    """1 for the first placement, 2 and 3 after the instance failed on other hosts."""
    name: str
    flavor: Flavor
    image: str | None = None
    network: str | None = None
    delete_on_termination: bool = True
    restart_policy: InstanceRestartPolicy = "never"
    """Copied from the request: the agent restarts the guest after a stop it did not ask for."""
    hostname: str | None = None
    """Copied from the request (the guest's host name); None in events before it."""
    key_name: str | None = None
    """Copied from the request: the name `public_keys` go by in the guest's metadata."""
    public_keys: tuple[str, ...] = ()
    """Copied from the request: the keypair's OpenSSH public key(s) as they were then."""
    user_data: str | None = None
    """Copied from the request: the tenant's user data, base64 as sent."""
    config_drive: bool = False
    """Copied from the request: the agent attaches a config drive (`config-2`) to the guest."""


@event("InstanceSchedulingFailed")
@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSchedulingFailed(Event):
    """No host could take the instance; `reason` is shown to the user (aggregate: instance)."""

    reason: str
    attempts: int


@event("ClaimReleased")
@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimReleased(Event):
    """The instance's resources on `host` are free again (aggregate: instance id)."""

    host: str
    reason: str


@event("HostMarkedDown")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostMarkedDown(Event):
    """A host missed its heartbeats and gets nothing new (aggregate: host name)."""

    last_heartbeat_at: datetime | None


@event("HostMarkedUp")
@dataclass(frozen=True, slots=True, kw_only=True)
class HostMarkedUp(Event):
    """A host that was down sends heartbeats again (aggregate: host name)."""
