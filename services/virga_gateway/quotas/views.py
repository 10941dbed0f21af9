"""Response bodies of quotas: limits and usage per resource."""

from __future__ import annotations

import msgspec

from virga_events.catalog.quotas import QUOTA_RESOURCES
from virga_gateway.quotas.model import default_limits, limits, usage
from virga_gateway.state import GatewayState


class Amounts(msgspec.Struct, kw_only=True):
    """An amount per resource: a limit (``-1``: unlimited) or what is in use."""

    instances: int
    vcpus: int
    ram_mb: int
    volumes: int
    volume_gb: int
    snapshots: int
    images: int
    networks: int
    ports: int
    security_groups: int
    keypairs: int
    floating_ips: int
    routers: int


class QuotaView(msgspec.Struct, kw_only=True):
    tenant_id: str
    limits: Amounts
    """The tenant's own limit where an admin set one, else the default."""
    usage: Amounts
    """What its live resources take, those requested and not yet built included."""
    overridden: list[str]
    """The resources whose limit is the tenant's own rather than the default."""


class QuotaDefaultsView(msgspec.Struct, kw_only=True):
    limits: Amounts
    """The limits of every tenant without its own."""


def _amounts(values: dict[str, int]) -> Amounts:
    return Amounts(**{name: values[name] for name in QUOTA_RESOURCES})


def quota_view(state: GatewayState, tenant_id: str) -> QuotaView:
    own = state.quota_overrides.get(tenant_id, {})
    return QuotaView(
        tenant_id=tenant_id,
        limits=_amounts(limits(state, tenant_id)),
        usage=_amounts(usage(state, tenant_id)),
        overridden=[name for name in QUOTA_RESOURCES if name in own],
    )


def defaults_view(state: GatewayState) -> QuotaDefaultsView:
    return QuotaDefaultsView(limits=_amounts(default_limits(state)))
