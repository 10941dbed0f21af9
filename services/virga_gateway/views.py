"""Response bodies as msgspec Structs, built from the projection; the OpenAPI schemas too."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec

from virga_events.catalog import Flavor
from virga_gateway.model import (
    GatewayState,
    HistoryEntry,
    Host,
    Instance,
    InstanceStatus,
    Ratios,
    Resources,
    ServerGroup,
    Tenant,
)


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class TenantView(_View):
    id: str
    name: str


class TenantList(_View):
    items: list[TenantView]


class IssuedToken(_View):
    id: str
    token: str
    """The bearer token. Shown in this response only: the gateway keeps just its hash."""
    expires_at: datetime | None


class FlavorView(_View):
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


class FlavorList(_View):
    items: list[FlavorView]


class Address(_View):
    network: str
    ip: str
    mac: str


class VolumeAttachment(_View):
    volume_id: str
    device: str


class InstanceView(_View):
    id: str
    name: str
    tenant_id: str
    flavor: FlavorView
    status: InstanceStatus
    host: str | None
    fault: str | None
    """Why the last operation failed (the scheduler's reason when status is ERROR)."""
    addresses: list[Address]
    volumes: list[VolumeAttachment]
    image: str | None
    network: str | None
    server_group: str | None
    availability_zone: str | None
    required_traits: list[str]
    delete_on_termination: bool
    created_at: datetime
    updated_at: datetime
    """Event time of the newest event about the instance."""


class InstanceList(_View):
    items: list[InstanceView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


class InstanceEvent(_View):
    event_id: str
    type: str
    producer: str
    occurred_at: datetime
    correlation_id: str
    causation_id: str | None
    payload: dict[str, Any]


class ServerGroupView(_View):
    id: str
    name: str
    policy: Literal["affinity", "anti-affinity"]
    scope: Literal["host", "rack"]
    tenant_id: str
    members: list[str]
    """Ids of the instances requested into the group and not deleted."""


class ServerGroupList(_View):
    items: list[ServerGroupView]


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


def tenant_view(tenant: Tenant) -> TenantView:
    return TenantView(id=tenant.id, name=tenant.name)


def flavor_view(flavor: Flavor) -> FlavorView:
    return FlavorView(
        name=flavor.name, vcpus=flavor.vcpus, ram_mb=flavor.ram_mb, disk_gb=flavor.disk_gb
    )


def instance_view(instance: Instance) -> InstanceView:
    assert instance.flavor is not None, "only requested instances are shown"
    assert instance.created_at is not None
    return InstanceView(
        id=instance.id,
        name=instance.name,
        tenant_id=instance.tenant_id,
        flavor=flavor_view(instance.flavor),
        status=instance.status,
        host=instance.host,
        fault=instance.fault,
        addresses=[Address(network=a.network, ip=a.ip, mac=a.mac) for a in instance.addresses],
        volumes=[
            VolumeAttachment(volume_id=volume_id, device=device)
            for volume_id, device in sorted(instance.attached_volumes.items())
        ],
        image=instance.image,
        network=instance.network,
        server_group=instance.server_group,
        availability_zone=instance.availability_zone,
        required_traits=list(instance.required_traits),
        delete_on_termination=instance.delete_on_termination,
        created_at=instance.created_at,
        updated_at=instance.updated_at or instance.created_at,
    )


def instance_event(entry: HistoryEntry) -> InstanceEvent:
    return InstanceEvent(
        event_id=entry.event_id,
        type=entry.type,
        producer=entry.producer,
        occurred_at=entry.occurred_at,
        correlation_id=entry.correlation_id,
        causation_id=entry.causation_id,
        payload=entry.payload,
    )


def server_group_view(state: GatewayState, group: ServerGroup) -> ServerGroupView:
    return ServerGroupView(
        id=group.id,
        name=group.name,
        policy=group.policy,
        scope=group.scope,
        tenant_id=group.tenant_id,
        members=list(state.group_members.get(group.id, [])),
    )


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
