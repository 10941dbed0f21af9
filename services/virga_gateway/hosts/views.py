"""Response bodies of hosts and allocation ratios."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from virga_gateway.hosts.model import Host, Ratios, Resources
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


class HostList(_View):
    items: list[HostView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def _resources(resources: Resources) -> ResourcesView:
    return ResourcesView(vcpus=resources.vcpus, ram_mb=resources.ram_mb, disk_gb=resources.disk_gb)


def ratios_view(host: str, ratios: Ratios) -> AllocationRatiosView:
    return AllocationRatiosView(host=host, cpu=ratios.cpu, ram=ratios.ram, disk=ratios.disk)


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
    )
