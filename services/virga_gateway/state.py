"""The gateway's projection: `GatewayState`, the resources' tables side by side, and its fold
`evolve(state, event)` over `<ns>.api`, `<ns>.scheduler`, `<ns>.compute` (and the others).

Pure: no I/O, no clock. A rebuild reads the inputs before the gateway's own topic, and each
topic's partitions in no set order, so every handler accepts an aggregate's facts in any order
across topics (stubs stand in for what is not known yet). Nothing is refused: the gateway only
projects, and its own requests were validated before they were written.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

import msgspec

from virga_events import Envelope
from virga_events.catalog import Flavor
from virga_events.catalog.network import security_group_rule_id
from virga_gateway import idempotency
from virga_gateway.billing import fold as billing_fold
from virga_gateway.billing import retention as usage_retention
from virga_gateway.consoles import fold as consoles_fold
from virga_gateway.consoles.model import ConsoleTicket
from virga_gateway.cursor import OrderKey
from virga_gateway.external_networks import fold as external_networks_fold
from virga_gateway.external_networks.model import ExternalNetwork
from virga_gateway.flavors import fold as flavors_fold
from virga_gateway.flavors.model import DEFAULT_FLAVORS
from virga_gateway.floating_ips import fold as floating_ips_fold
from virga_gateway.floating_ips.model import FloatingIp
from virga_gateway.hosts import fold as hosts_fold
from virga_gateway.hosts import fold_drain as hosts_drain_fold
from virga_gateway.hosts.model import Host, Ratios
from virga_gateway.idempotency import IdempotencyRecord
from virga_gateway.images import fold as images_fold
from virga_gateway.images.model import Image
from virga_gateway.instances import fold as instances_fold
from virga_gateway.instances import fold_migration as migration_fold
from virga_gateway.instances import fold_resize as resize_fold
from virga_gateway.instances.model import Instance
from virga_gateway.keypairs import fold as keypairs_fold
from virga_gateway.keypairs.model import Keypair
from virga_gateway.networks import fold as networks_fold
from virga_gateway.networks.model import Network
from virga_gateway.ports import fold as ports_fold
from virga_gateway.ports.model import Port
from virga_gateway.quotas import fold as quotas_fold
from virga_gateway.quotas.model import Counted
from virga_gateway.rebalance import fold as rebalance_fold
from virga_gateway.rebalance.model import Rebalance
from virga_gateway.retention import RETENTION, eligible, expire, is_forgotten
from virga_gateway.routers import fold as routers_fold
from virga_gateway.routers.model import Router
from virga_gateway.security_groups import fold as security_groups_fold
from virga_gateway.security_groups.model import SecurityGroup
from virga_gateway.server_groups import fold as server_groups_fold
from virga_gateway.server_groups.model import ServerGroup
from virga_gateway.tenants import fold as tenants_fold
from virga_gateway.tenants.model import Tenant, Token
from virga_gateway.volumes import fold as volumes_fold
from virga_gateway.volumes.model import Volume
from virga_rating.state import BillingState
from virga_runtime.folding import Folds

__all__ = ["STATE_VERSION", "GatewayState", "evolve", "restore", "snapshot"]

STATE_VERSION = 2
"""The projection's shape, as snapshots record it: 2 added the listings' per-tenant indexes
and retention's tables, which an older snapshot lacks (the gateway rebuilds from the log)."""

Preview = Literal["shared", "touched", "touched-deep", "touched-instances", "empty"]
"""How `GatewayState.preview_copy` copies a table (see there)."""


class GatewayState(msgspec.Struct, kw_only=True):
    """The whole projection; `evolve` folds events into it."""

    tenants: dict[str, Tenant] = msgspec.field(default_factory=dict)
    deleted_tenants: dict[str, None] = msgspec.field(default_factory=dict)
    """Ids of the tenants an admin deleted: their tokens are refused, a late duplicate of
    their creation does not bring them back."""
    tokens: dict[str, Token] = msgspec.field(default_factory=dict)
    token_ids_by_sha256: dict[str, str] = msgspec.field(default_factory=dict)
    flavors: dict[str, Flavor] = msgspec.field(
        default_factory=lambda: {f.name: f for f in DEFAULT_FLAVORS}
    )
    instances: dict[str, Instance] = msgspec.field(default_factory=dict)
    instance_order: list[OrderKey] = msgspec.field(default_factory=list)
    """Every requested instance, sorted."""
    tenant_instance_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    """The same, per tenant: a tenant's listing never walks other tenants' instances."""
    server_groups: dict[str, ServerGroup] = msgspec.field(default_factory=dict)
    group_members: dict[str, list[str]] = msgspec.field(default_factory=dict)
    hosts: dict[str, Host] = msgspec.field(default_factory=dict)
    drain_flows: dict[str, str] = msgspec.field(default_factory=dict)
    """Flow id of a running drain, or of one of its migrations -> the host drained."""
    rebalances: dict[str, Rebalance] = msgspec.field(default_factory=dict)
    """Flow id -> a rebalance an admin had executed (`rebalance/`)."""
    console_tickets: dict[str, ConsoleTicket] = msgspec.field(default_factory=dict)
    """Ticket sha256 -> the console ticket issued (`consoles/`)."""
    claims: dict[str, dict[str, Flavor]] = msgspec.field(default_factory=dict)
    """instance id -> host -> the flavor claimed there."""
    allocation_ratios: dict[str, Ratios] = msgspec.field(default_factory=dict)
    """Host name (or ``*`` for every host) -> the ratios an admin set."""
    idempotency: dict[str, IdempotencyRecord] = msgspec.field(default_factory=dict)
    """Idempotency aggregate id (principal + key) -> first response, oldest first."""
    volumes: dict[str, Volume] = msgspec.field(default_factory=dict)
    volume_order: list[OrderKey] = msgspec.field(default_factory=list)
    """Every listed volume, sorted by (created_at, id)."""
    tenant_volume_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    snapshot_volumes: dict[str, str] = msgspec.field(default_factory=dict)
    """Volume snapshot id -> the volume it was taken of."""
    images: dict[str, Image] = msgspec.field(default_factory=dict)
    billing: BillingState = msgspec.field(default_factory=BillingState)
    """Usage, prices and invoices, folded by billing's own core (`billing.fold`)."""
    usage_retention: usage_retention.UsageRetention = msgspec.field(
        default_factory=usage_retention.UsageRetention
    )
    """What of `billing`'s deleted resources was pruned, and from when usage is whole."""
    networks: dict[str, Network] = msgspec.field(default_factory=dict)
    ports: dict[str, Port] = msgspec.field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = msgspec.field(default_factory=dict)
    """Security groups tenants created; each tenant's default group is implicit."""
    keypairs: dict[str, Keypair] = msgspec.field(default_factory=dict)
    """``<tenant id>/<name>`` -> the tenant's keypair of that name."""
    external_networks: dict[str, ExternalNetwork] = msgspec.field(default_factory=dict)
    floating_ips: dict[str, FloatingIp] = msgspec.field(default_factory=dict)
    routers: dict[str, Router] = msgspec.field(default_factory=dict)
    quota_defaults: dict[str, int] = msgspec.field(default_factory=dict)
    """Default limits an admin set (resource -> limit, -1 unlimited); the others: the
    contract's `DEFAULT_LIMITS`."""
    quota_overrides: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    """Tenant -> its own limits, where an admin set them."""
    quota_usage: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    """Tenant -> what its records count against its quotas (`quotas.model`)."""
    quota_counted: dict[str, Counted] = msgspec.field(default_factory=dict)
    """``table/id`` -> what that record was last counted as (kept by `quotas.fold.recount`)."""
    # The listings' indexes, sorted by (created_at, id): a page walks one tenant's keys (an
    # admin's, every tenant's merged), never the whole table.
    tenant_order: list[OrderKey] = msgspec.field(default_factory=list)
    tenant_network_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    tenant_port_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    network_port_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    """Network id -> its ports' keys (`GET /v1/ports?network_id=`)."""
    image_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    """Owner (`PUBLIC_IMAGES` for the public ones) -> its images' keys."""
    tenant_security_group_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    tenant_server_group_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    tenant_keypair_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    external_network_order: list[OrderKey] = msgspec.field(default_factory=list)
    tenant_floating_ip_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    tenant_router_order: dict[str, list[OrderKey]] = msgspec.field(default_factory=dict)
    # Retention (`retention.py`): deleted resources are forgotten a while after their deletion.
    clock: datetime | None = None
    """The latest event time folded: the projection's own clock, the same in a rebuild."""
    expiring: list[tuple[datetime, str, str]] = msgspec.field(default_factory=list)
    """A heap of (deleted at, kind, id) of the deleted resources still remembered."""
    forgotten: dict[str, None] = msgspec.field(default_factory=dict)
    """``kind:id`` of forgotten resources, oldest first (bounded by TOMBSTONE_LIMIT): a late
    event about one must not bring it back."""

    def preview_copy(self, touched: Iterable[str]) -> GatewayState:
        """A scratch state to fold a request's events into, holding copies of just what they
        touch (aggregate ids `touched`); this state is left untouched (see `preview`)."""
        keys = set(touched)
        tables: dict[str, Any] = {}
        # The names alone: msgspec.structs.fields() resolves every field's type on each call
        # (~1 ms, paid by every write; a sixth of the gateway's time while 200 instances boot).
        for name in self.__struct_fields__:
            how = PREVIEW_COPIES[name]
            if how == "empty":
                continue
            table = getattr(self, name)
            if how == "shared":
                tables[name] = dict(table)
            else:
                tables[name] = {k: _COPIERS[how](table[k]) for k in keys if k in table}
        return GatewayState(**tables)


PREVIEW_COPIES: dict[str, Preview] = {
    # Records in these tables are replaced, never mutated, by evolve: sharing them is safe.
    "tenants": "shared",
    "deleted_tenants": "shared",
    "flavors": "shared",
    "server_groups": "shared",
    "allocation_ratios": "shared",
    "security_groups": "shared",
    "keypairs": "shared",
    "quota_defaults": "shared",
    "quota_overrides": "shared",
    "quota_usage": "shared",
    "console_tickets": "shared",
    # These are mutated in place: copy the touched ones (history is read, not needed).
    "tokens": "touched",
    "hosts": "touched-deep",
    "drain_flows": "shared",
    "rebalances": "touched-deep",
    "instances": "touched-instances",
    "networks": "touched-deep",
    "ports": "touched-deep",
    "volumes": "touched-deep",
    "images": "touched-deep",
    "external_networks": "touched-deep",
    "floating_ips": "touched-deep",
    "routers": "touched-deep",
    # Not read by any response a write answers with: left empty.
    "token_ids_by_sha256": "empty",
    "instance_order": "empty",
    "tenant_instance_order": "empty",
    "group_members": "empty",
    "claims": "empty",
    "idempotency": "empty",
    "volume_order": "empty",
    "tenant_volume_order": "empty",
    "snapshot_volumes": "empty",
    "billing": "empty",
    "usage_retention": "empty",
    # A preview recounts only what its events touch, which no quota view reads.
    "quota_counted": "empty",
    "tenant_order": "empty",
    "tenant_network_order": "empty",
    "tenant_port_order": "empty",
    "network_port_order": "empty",
    "image_order": "empty",
    "tenant_security_group_order": "empty",
    "tenant_server_group_order": "empty",
    "tenant_keypair_order": "empty",
    "external_network_order": "empty",
    "tenant_floating_ip_order": "empty",
    "tenant_router_order": "empty",
    "clock": "empty",
    "expiring": "empty",
    "forgotten": "empty",
}
"""How `GatewayState.preview_copy` copies each table: shared (a new dict of the same records),
touched (copies of the records the events touch; deep, or an instance without its history), or
empty (the table's default). Every table of `GatewayState` must be named here."""

_COPIERS: dict[str, Callable[[Any], Any]] = {
    "touched": copy.copy,
    "touched-deep": copy.deepcopy,
    "touched-instances": lambda instance: msgspec.structs.replace(instance, history=[]),
}

FOLDS: tuple[Folds[GatewayState], ...] = (
    tenants_fold.folds,
    flavors_fold.folds,
    server_groups_fold.folds,
    keypairs_fold.folds,
    idempotency.folds,
    instances_fold.folds,
    migration_fold.folds,
    resize_fold.folds,
    hosts_fold.folds,
    hosts_drain_fold.folds,
    rebalance_fold.folds,
    consoles_fold.folds,
    networks_fold.folds,
    ports_fold.folds,
    external_networks_fold.folds,
    floating_ips_fold.folds,
    routers_fold.folds,
    security_groups_fold.folds,
    volumes_fold.folds,
    images_fold.folds,
    billing_fold.folds,
    quotas_fold.folds,
    instances_fold.history,
    migration_fold.history,
    resize_fold.history,
)
"""The resources' folds, in the order each event goes through them: each resource's own
(one per event type), then billing's, then the instances' histories."""


GUARDED: dict[int, str] = {
    id(instances_fold.folds): "instance",
    id(instances_fold.history): "instance",
    id(migration_fold.folds): "instance",
    id(migration_fold.history): "instance",
    id(resize_fold.folds): "instance",
    id(resize_fold.history): "instance",
    id(networks_fold.folds): "network",
    id(ports_fold.folds): "port",
    id(volumes_fold.folds): "volume",
    id(images_fold.folds): "image",
    id(floating_ips_fold.folds): "floating_ip",
    id(routers_fold.folds): "router",
    id(external_networks_fold.folds): "external_network",
}
"""The folds whose events are about one kind of resource (their aggregate): skipped for a
forgotten one, so that a late event does not bring it back."""


_BY_TYPE: dict[type[Any], tuple[tuple[Folds[GatewayState], str | None], ...]] = {}


def _folds_of(event_type: type[Any]) -> tuple[tuple[Folds[GatewayState], str | None], ...]:
    """The folds of `FOLDS` that fold `event_type`, in order, each with its GUARDED kind: the
    others would leave the state alone, so they are not asked (a replay folds millions)."""
    found = _BY_TYPE.get(event_type)
    if found is None:
        found = tuple((f, GUARDED.get(id(f))) for f in FOLDS if event_type in f.event_types)
        _BY_TYPE[event_type] = found
    return found


def evolve(
    state: GatewayState, envelope: Envelope, retention: timedelta = RETENTION
) -> GatewayState:
    """Fold one event; types the gateway does not project are ignored. Deleted resources
    are forgotten `retention` after their deletion, in event time (`retention.py`)."""
    before = eligible(state, envelope.aggregate_id)
    for folds, kind in _folds_of(type(envelope.payload)):
        if kind is not None and is_forgotten(state, kind, envelope.aggregate_id):
            continue
        folds.evolve(state, envelope)
    quotas_fold.recount(state, envelope.aggregate_id)
    expire(state, envelope, before, retention)
    usage_retention.prune(state.usage_retention, state.billing, state.clock, retention)
    return state


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(GatewayState)


def snapshot(state: GatewayState) -> str:
    """The projection as one JSON string (msgspec encodes its Structs in C)."""
    return _ENCODER.encode(state).decode()


def restore(value: Any) -> GatewayState:
    # Usage is recounted rather than trusted: a snapshot may predate quotas.
    state = quotas_fold.recount_all(_DECODER.decode(value))
    # A snapshot from before rules had ids holds only creation rules, in their order.
    for group in state.security_groups.values():
        if any(not rule.id for rule in group.rules):
            group.rules = [
                r if r.id else msgspec.structs.replace(r, id=security_group_rule_id(group.id, i))
                for i, r in enumerate(group.rules)
            ]
    return state
