"""Response bodies of instances and their history, built from the projection; the OpenAPI
schemas too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from virga_gateway.flavors.views import FlavorView, flavor_view
from virga_gateway.floating_ips.views import FloatingIpRef
from virga_gateway.instances.model import HistoryEntry, Instance, InstanceStatus


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


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
    floating_ips: list[FloatingIpRef]
    """The floating IPs pointed at its port: its public addresses."""
    volumes: list[VolumeAttachment]
    """Every disk it has: its boot volume (vda) and the volumes attached to it."""
    image: str | None
    network_id: str | None
    """The network its port is on."""
    network: str | None
    """The same as `network_id` (its older name, kept for existing clients)."""
    server_group: str | None
    availability_zone: str | None
    required_traits: list[str]
    delete_on_termination: bool
    restart_policy: str
    """`never`, `on-crash` or `always`: what follows a stop Virga did not ask for."""
    hostname: str | None
    """The guest's host name: the instance name as an RFC 1123 label."""
    key_name: str | None
    """The keypair whose public key the guest was given (a copy: it stays if the keypair is
    deleted). The user data is never shown here: it is in the instance's request, in
    `GET /v1/instances/{id}/events`."""
    config_drive: bool
    stop_cause: str | None
    """Why a STOPPED instance is off: `requested` (a stop request), `found` (found off by its
    agent), `shutdown` (the guest powered itself off), `destroyed` (outside Virga) or
    `crashed`; null otherwise."""
    created_at: datetime
    updated_at: datetime
    """Event time of the newest event about the instance."""


class MigrationView(_View):
    flow_id: str
    """The live migration's id: its flow's events (FlowStarted, FlowCompleted or FlowFailed)
    carry it, and they show in the instance's history."""
    instance: InstanceView


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
        floating_ips=[FloatingIpRef(id=k, ip=v or None) for k, v in instance.floating_ips.items()],
        volumes=_disks(instance),
        image=instance.image,
        network_id=instance.network,
        network=instance.network,
        server_group=instance.server_group,
        availability_zone=instance.availability_zone,
        required_traits=list(instance.required_traits),
        delete_on_termination=instance.delete_on_termination,
        restart_policy=instance.restart_policy,
        hostname=instance.hostname,
        key_name=instance.key_name,
        config_drive=instance.config_drive,
        stop_cause=instance.stop_cause if instance.status == "STOPPED" else None,
        created_at=instance.created_at,
        updated_at=instance.updated_at or instance.created_at,
    )


def _disks(instance: Instance) -> list[VolumeAttachment]:
    boot = instance.boot_volume
    attached = [
        VolumeAttachment(volume_id=volume_id, device=device)
        for volume_id, device in sorted(instance.attached_volumes.items())
        if volume_id != boot
    ]
    if boot is None or instance.deleted:  # a kept boot volume is no longer its disk
        return attached
    return [VolumeAttachment(volume_id=boot, device="vda"), *attached]


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
