"""Response bodies of hosts and allocation ratios."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_gateway.hosts.model import Drain, DrainStatus, Host, Ratios, Resources
from virga_gateway.state import GatewayState


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class ResourcesView(_View):
    vcpus: int
    ram_mb: int
    disk_gb: int


class AllocationRatiosView(_View):
    host: str
    """The host these ratios apply to, or ``*`` for the default of every host."""
    cpu: float
    ram: float
    disk: float


class DrainView(_View):
    id: str
    status: DrainStatus
    """DRAINING while instances move; DRAINED once the host runs none of those it ran;
    FAILED when some could not move (`unmoved`: they run on at the host)."""
    instances: list[str]
    """The running instances the drain moves (listed when the scheduler started it)."""
    moving: list[str]
    moved: list[str]
    unmoved: list[str]
    stopped: list[str]
    """Stopped instances left placed on the host: they run nothing."""
    reason: str


class HostView(_View):
    name: str
    rack: str
    zone: str
    capacity: ResourcesView
    allocated: ResourcesView
    """What the scheduler's claims hold on the host."""
    state: Literal["up", "down"]
    enabled: bool
    disabled_reason: str
    traits: list[str]
    last_heartbeat_at: datetime | None
    allocation_ratios: AllocationRatiosView | None
    """The ratios an admin set for this host, else the default set for all, else null."""
    drain: DrainView | None
    """The host's latest drain and its progress; null if it was never drained."""


class HostList(_View):
    items: list[HostView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def _resources(resources: Resources) -> ResourcesView:
    return ResourcesView(vcpus=resources.vcpus, ram_mb=resources.ram_mb, disk_gb=resources.disk_gb)


def ratios_view(host: str, ratios: Ratios) -> AllocationRatiosView:
    return AllocationRatiosView(host=host, cpu=ratios.cpu, ram=ratios.ram, disk=ratios.disk)


def drain_view(drain: Drain) -> DrainView:
    return DrainView(
        id=drain.id,
        status=drain.status,
        instances=list(drain.instances),
        moving=list(drain.moving),
        moved=list(drain.moved),
        unmoved=list(drain.unmoved),
        stopped=list(drain.stopped),
        reason=drain.reason,
    )


def host_view(state: GatewayState, host: Host) -> HostView:
    scope = host.name if host.name in state.allocation_ratios else "*"
    ratios = state.allocation_ratios.get(scope)
    return HostView(
        name=host.name,
        rack=host.rack,
        zone=host.zone,
        capacity=_resources(host.capacity),
        allocated=_resources(host.allocated),
        state=host.state,
        enabled=host.enabled,
        disabled_reason=host.disabled_reason,
        traits=list(host.traits),
        last_heartbeat_at=host.last_heartbeat_at,
        allocation_ratios=ratios_view(scope, ratios) if ratios is not None else None,
        drain=drain_view(host.drain) if host.drain is not None else None,
    )
