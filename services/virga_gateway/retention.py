"""How long the projection remembers deleted resources: bounded memory for a churning fleet.

A deleted instance, volume, network, port, image, floating IP, router or external network is
forgotten `retention` after its deletion (VIRGA_GATEWAY_RETENTION_SECONDS, an hour by default):
its record and its place in the listings go, and the API answers 404 for it as for an id it
never knew. Its history stays in
the log (`virga audit trace` finds it).

Deterministic from the log, so a rebuilt gateway holds what a live one does:

- time is event time: the projection's clock is the latest `occurred_at` it folded, never the
  wall clock;
- a resource is due once every fact that ends it is folded: its request, its deletion request
  and its deletion (an instance's or a volume's boot facts stand in for a request), so that a
  rebuild, which reads the services' topics before the gateway's own, forgets it only once the
  requests are read too;
- a forgotten resource leaves a tombstone (``kind:id``; the newest TOMBSTONE_LIMIT are kept, as
  the other services' folds do): a late event about it is skipped instead of making a stub.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from virga_events import Envelope
from virga_gateway.cursor import OrderKey, remove_key

if TYPE_CHECKING:
    from virga_gateway.state import GatewayState

RETENTION = timedelta(hours=1)
"""How long a deleted resource is remembered by default (event time)."""
TOMBSTONE_LIMIT = 10_000
"""Forgotten resources whose late events are still recognised (the newest ones)."""
PUBLIC_IMAGES = "*"
"""The owner key public images are listed under in `GatewayState.image_order`."""


def earliest(known: datetime | None, at: datetime) -> datetime:
    """The deletion time to keep: the first, whatever order duplicates arrive in."""
    return at if known is None or at < known else known


def _instance_due(state: GatewayState, resource_id: str) -> datetime | None:
    instance = state.instances.get(resource_id)
    if instance is None or not (instance.requested and instance.deletion_requested):
        return None
    return instance.deleted_at


def _volume_due(state: GatewayState, resource_id: str) -> datetime | None:
    volume = state.volumes.get(resource_id)
    if volume is None or not volume.listed:
        return None
    if volume.deletion_requested_at is None and volume.instance_id is None:
        return None
    return volume.deleted_at


def _network_due(state: GatewayState, resource_id: str) -> datetime | None:
    network = state.networks.get(resource_id)
    if network is None or not network.requested or not network.deletion_requests:
        return None
    return network.deleted_at


def _port_due(state: GatewayState, resource_id: str) -> datetime | None:
    port = state.ports.get(resource_id)
    if port is None or not port.requested:
        return None
    if not port.deletion_requested and port.instance_id is None:
        return None
    return port.deleted_at


def _image_due(state: GatewayState, resource_id: str) -> datetime | None:
    image = state.images.get(resource_id)
    if image is None or not image.requested:
        return None
    if image.deletion_requested_at is None and not image.refused:
        return None
    return image.deleted_at


def _floating_ip_due(state: GatewayState, resource_id: str) -> datetime | None:
    fip = state.floating_ips.get(resource_id)
    if fip is None or not fip.requested or not fip.release_requested:
        return None
    return fip.released_at


def _router_due(state: GatewayState, resource_id: str) -> datetime | None:
    router = state.routers.get(resource_id)
    if router is None or not router.requested or not router.deletion_requests:
        return None
    return router.deleted_at


def _external_network_due(state: GatewayState, resource_id: str) -> datetime | None:
    network = state.external_networks.get(resource_id)
    if network is None or not network.requested or not network.deletion_requests:
        return None
    return network.deleted_at


def _drop(orders: dict[str, list[OrderKey]], owner: str, key: OrderKey | None) -> None:
    order = orders.get(owner)
    if order is None or key is None:
        return
    remove_key(order, key)
    if not order:
        del orders[owner]


def _forget_instance(state: GatewayState, resource_id: str) -> None:
    instance = state.instances.pop(resource_id, None)
    if instance is None:
        return
    if instance.created_at is not None:
        key = (instance.created_at, resource_id)
        remove_key(state.instance_order, key)
        _drop(state.tenant_instance_order, instance.tenant_id, key)
    state.claims.pop(resource_id, None)
    if instance.server_group is not None:
        members = state.group_members.get(instance.server_group, [])
        if resource_id in members:
            members.remove(resource_id)


def _forget_volume(state: GatewayState, resource_id: str) -> None:
    volume = state.volumes.pop(resource_id, None)
    if volume is None:
        return
    if volume.created_at is not None:
        key = (volume.created_at, resource_id)
        remove_key(state.volume_order, key)
        _drop(state.tenant_volume_order, volume.tenant_id, key)
    for snapshot_id in volume.snapshots:
        state.snapshot_volumes.pop(snapshot_id, None)


def _forget_network(state: GatewayState, resource_id: str) -> None:
    network = state.networks.pop(resource_id, None)
    if network is None:
        return
    if network.created_at is not None:
        _drop(state.tenant_network_order, network.tenant_id, (network.created_at, resource_id))


def _forget_port(state: GatewayState, resource_id: str) -> None:
    port = state.ports.pop(resource_id, None)
    if port is None:
        return
    if port.listed_as is not None:
        tenant_id, network_id, created_at = port.listed_as
        key = (created_at, resource_id)
        _drop(state.tenant_port_order, tenant_id, key)
        _drop(state.network_port_order, network_id, key)


def _forget_image(state: GatewayState, resource_id: str) -> None:
    image = state.images.pop(resource_id, None)
    if image is None:
        return
    if image.created_at is not None:
        owner = image_owner(image.visibility, image.tenant_id)
        _drop(state.image_order, owner, (image.created_at, resource_id))


def _forget_floating_ip(state: GatewayState, resource_id: str) -> None:
    fip = state.floating_ips.pop(resource_id, None)
    if fip is not None and fip.created_at is not None:
        _drop(state.tenant_floating_ip_order, fip.tenant_id, (fip.created_at, resource_id))


def _forget_router(state: GatewayState, resource_id: str) -> None:
    router = state.routers.pop(resource_id, None)
    if router is not None and router.created_at is not None:
        _drop(state.tenant_router_order, router.tenant_id, (router.created_at, resource_id))


def _forget_external_network(state: GatewayState, resource_id: str) -> None:
    network = state.external_networks.pop(resource_id, None)
    if network is not None and network.created_at is not None:
        remove_key(state.external_network_order, (network.created_at, resource_id))


def image_owner(visibility: str, tenant_id: str) -> str:
    """The key of `GatewayState.image_order` an image is listed under."""
    return PUBLIC_IMAGES if visibility == "public" else tenant_id


KINDS: dict[str, tuple[Callable[[GatewayState, str], datetime | None], Callable[..., None]]] = {
    "instance": (_instance_due, _forget_instance),
    "volume": (_volume_due, _forget_volume),
    "network": (_network_due, _forget_network),
    "port": (_port_due, _forget_port),
    "image": (_image_due, _forget_image),
    "floating_ip": (_floating_ip_due, _forget_floating_ip),
    "router": (_router_due, _forget_router),
    "external_network": (_external_network_due, _forget_external_network),
}
"""Each kind of resource that can be forgotten: when it is due (its deletion time, once every
fact that ends it is folded) and how its record and listing keys are dropped."""

_TABLES = {
    "instance": "instances",
    "volume": "volumes",
    "network": "networks",
    "port": "ports",
    "image": "images",
    "floating_ip": "floating_ips",
    "router": "routers",
    "external_network": "external_networks",
}
_DUES = tuple((kind, _TABLES[kind], due) for kind, (due, _) in KINDS.items())
"""Each kind with its table (no record there: not due) and its due function."""


def is_forgotten(state: GatewayState, kind: str, resource_id: str) -> bool:
    return f"{kind}:{resource_id}" in state.forgotten


_NONE_DUE: frozenset[str] = frozenset()


def eligible(state: GatewayState, resource_id: str) -> frozenset[str]:
    """The kinds of resource with this id that are already due (before an event is folded)."""
    # Once per event of a rebuild, and almost always none: no set is built for none.
    found = _NONE_DUE
    for kind, table, due in _DUES:
        if resource_id in getattr(state, table) and due(state, resource_id):
            found = found | {kind}
    return found


def expire(
    state: GatewayState, envelope: Envelope, before: frozenset[str], retention: timedelta
) -> None:
    """After `envelope` is folded: queue what it made due, move the clock on, and forget
    every resource deleted more than `retention` before the clock."""
    resource_id = envelope.aggregate_id
    for kind, table, due in _DUES:
        if kind in before or resource_id not in getattr(state, table):
            continue
        deleted_at = due(state, resource_id)
        if deleted_at is not None:
            heapq.heappush(state.expiring, (deleted_at, kind, resource_id))
    if state.clock is None or envelope.occurred_at > state.clock:
        state.clock = envelope.occurred_at
    if not state.expiring:
        return
    horizon = state.clock - retention
    while state.expiring and state.expiring[0][0] <= horizon:
        _, kind, forgotten_id = heapq.heappop(state.expiring)
        if is_forgotten(state, kind, forgotten_id):
            continue
        KINDS[kind][1](state, forgotten_id)
        tombstones = state.forgotten
        tombstones[f"{kind}:{forgotten_id}"] = None
        while len(tombstones) > TOMBSTONE_LIMIT:
            del tombstones[next(iter(tombstones))]
