"""What counts against a tenant's quotas, read from the projection's records.

A resource counts from the moment its request is accepted (it is in the projection as soon as
its event is appended) until the service that owns it reports it gone: `InstanceDeleted`,
`VolumeDeleted`, `VolumeSnapshotDeleted`, `ImageDeleted`, `NetworkDeleted`, `PortDeleted`,
`SecurityGroupDeleted`, `KeypairDeleted`, `FloatingIpReleased`, `RouterDeleted`, or a failure
to create it (`VolumeFailed` of a create or a snapshot, `ImageImportFailed`,
`NetworkCreationFailed`, `PortAllocationFailed`, `FloatingIpAllocationFailed`,
`RouterCreationFailed`). An instance in ERROR and anything whose deletion is only requested
still count, as in Nova: the tenant deletes them to free their share. An instance's boot
volume and its port are part of the instance and count only as the instance; a public image an
admin uploaded counts against no one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import msgspec

from virga_events.catalog.quotas import DEFAULT_LIMITS, QUOTA_RESOURCES, UNLIMITED
from virga_gateway.floating_ips.model import FloatingIp
from virga_gateway.images.model import Image
from virga_gateway.instances.model import Instance
from virga_gateway.keypairs.model import Keypair
from virga_gateway.networks.model import Network
from virga_gateway.ports.model import Port
from virga_gateway.routers.model import Router
from virga_gateway.security_groups.model import SecurityGroup
from virga_gateway.volumes.model import Volume

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

Usage = dict[str, int]
"""Resource name -> amount; absent names are 0."""


class Counted(msgspec.Struct, frozen=True, array_like=True):
    """What one record contributes to its tenant's usage, as last counted."""

    tenant_id: str
    usage: Usage


TABLES = (
    "instances",
    "volumes",
    "images",
    "networks",
    "ports",
    "security_groups",
    "keypairs",
    "floating_ips",
    "routers",
)
"""The projection's tables whose records count; a record's key is ``table/id``."""


def instance_usage(instance: Instance) -> Usage:
    flavor = instance.flavor
    if not instance.requested or instance.deleted or flavor is None:
        return {}
    # While a resize runs, the larger of both flavors: it may end either way.
    other = instance.resize_flavor or flavor
    vcpus, ram_mb = max(flavor.vcpus, other.vcpus), max(flavor.ram_mb, other.ram_mb)
    return {"instances": 1, "vcpus": vcpus, "ram_mb": ram_mb}


def volume_usage(volume: Volume) -> Usage:
    if volume.deleted:
        return {}
    usage: Usage = {}
    if volume.requested and not (volume.create_fault is not None and not volume.created):
        usage = {"volumes": 1, "volume_gb": volume.requested_size_gb}
    snapshots = sum(
        1
        for s in volume.snapshots.values()
        if s.request_event_id is not None
        and not s.deleted
        and not (s.fault is not None and not s.created)
    )
    if snapshots:
        usage["snapshots"] = snapshots
    return usage


def image_usage(image: Image) -> Usage:
    if not image.requested or not image.tenant_id or image.deleted:
        return {}
    return {} if image.import_fault is not None else {"images": 1}


def network_usage(network: Network) -> Usage:
    if not network.requested or network.deleted or network.creation_fault is not None:
        return {}
    return {"networks": 1}


def port_usage(port: Port) -> Usage:
    if not port.requested or port.instance_id is not None or not port.live:
        return {}
    return {"ports": 1}


def security_group_usage(group: SecurityGroup) -> Usage:
    return {"security_groups": 1}


def keypair_usage(keypair: Keypair) -> Usage:
    return {"keypairs": 1}


def floating_ip_usage(fip: FloatingIp) -> Usage:
    return {"floating_ips": 1} if fip.live else {}


def router_usage(router: Router) -> Usage:
    return {"routers": 1} if router.live else {}


USAGE_OF: dict[str, Callable[[Any], Usage]] = {
    "instances": instance_usage,
    "volumes": volume_usage,
    "images": image_usage,
    "networks": network_usage,
    "ports": port_usage,
    "security_groups": security_group_usage,
    "keypairs": keypair_usage,
    "floating_ips": floating_ip_usage,
    "routers": router_usage,
}
"""Each table of TABLES (the projection's field of that name) -> what one of its records
counts; every record has a `tenant_id`."""


def contribution(state: GatewayState, table: str, key: str) -> Counted | None:
    """What the record `key` of `table` counts against its tenant now (None: nothing)."""
    record = getattr(state, table).get(key)
    return None if record is None else counted(record, USAGE_OF[table])


def counted(record: Any, usage_of: Callable[[Any], Usage]) -> Counted | None:
    """What `record` counts (None: nothing), by `usage_of`, the usage function of its table."""
    if not record.tenant_id:
        return None
    usage = usage_of(record)
    return Counted(record.tenant_id, usage) if usage else None


def add(total: Usage, usage: Usage, sign: int = 1) -> None:
    for name, amount in usage.items():
        left = total.get(name, 0) + sign * amount
        if left:
            total[name] = left
        else:
            total.pop(name, None)


def increase(state: GatewayState, after: GatewayState, keys: Iterable[str]) -> dict[str, Usage]:
    """Tenant -> the resources whose usage grows from `state` to `after`, by how much, looking
    only at the records `keys` (the aggregates a request's events touch)."""
    delta: dict[str, Usage] = {}
    for key in set(keys):
        for table in TABLES:
            before, now = contribution(state, table, key), contribution(after, table, key)
            if before is not None:
                add(delta.setdefault(before.tenant_id, {}), before.usage, -1)
            if now is not None:
                add(delta.setdefault(now.tenant_id, {}), now.usage)
    return {
        tenant: grown
        for tenant, usage in delta.items()
        if (grown := {name: amount for name, amount in usage.items() if amount > 0})
    }


def default_limits(state: GatewayState) -> dict[str, int]:
    """The limits of a tenant without its own: an admin's defaults, else the contract's."""
    return {name: state.quota_defaults.get(name, DEFAULT_LIMITS[name]) for name in QUOTA_RESOURCES}


def limits(state: GatewayState, tenant_id: str) -> dict[str, int]:
    """The tenant's limit of every resource: its own, else the default (-1: unlimited)."""
    return {**default_limits(state), **state.quota_overrides.get(tenant_id, {})}


def usage(state: GatewayState, tenant_id: str) -> Usage:
    current = state.quota_usage.get(tenant_id, {})
    return {name: current.get(name, 0) for name in QUOTA_RESOURCES}


def exceeded(
    state: GatewayState, tenant_id: str, wanted: Usage
) -> Iterator[tuple[str, int, int, int]]:
    """(resource, limit, in use, wanted) for each resource `wanted` would take over its limit."""
    limit, used = limits(state, tenant_id), usage(state, tenant_id)
    for name in QUOTA_RESOURCES:
        amount = wanted.get(name, 0)
        if amount > 0 and limit[name] != UNLIMITED and used[name] + amount > limit[name]:
            yield name, limit[name], used[name], amount
