"""Per-tenant quotas: the limits an admin sets, on `<ns>.api`, and the rule of what they limit.

Both the gateway (which enforces them) and the audit (which recomputes usage from the log)
read the names and the starting defaults from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from virga_events.registry import Event, event

QUOTA_RESOURCES: Final[tuple[str, ...]] = (
    "instances",
    "vcpus",
    "ram_mb",
    "volumes",
    "volume_gb",
    "snapshots",
    "images",
    "networks",
    "ports",
    "security_groups",
    "keypairs",
    "floating_ips",
    "routers",
)
"""What a quota limits."""

UNLIMITED: Final = -1
"""The limit that never refuses."""

DEFAULT_LIMITS: Final[dict[str, int]] = {
    "instances": 10,
    "vcpus": 20,
    "ram_mb": 51_200,
    "volumes": 10,
    "volume_gb": 1_000,
    "snapshots": 10,
    "images": 10,
    "networks": 10,
    "ports": 50,
    "security_groups": 10,
    "keypairs": 100,
    "floating_ips": 50,
    "routers": 10,
}
"""Every tenant's limits until an admin sets other defaults: Nova's for instances, vCPUs and
RAM, Cinder's for volumes, gigabytes and snapshots; networks, ports and security groups as
Neutron's defaults scaled to one tenant's needs; 10 private images; Nova's 100 keypairs;
Neutron's 50 floating IPs and 10 routers."""

QUOTA_DEFAULTS_ID: Final = "quota-defaults"
"""The aggregate id of QuotaDefaultsSet."""


@event("QuotaDefaultsSet")
@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaDefaultsSet(Event):
    """An admin changed the default limits of every tenant without its own (aggregate:
    ``quota-defaults``). Only the resources named change; ``-1`` is unlimited."""

    limits: dict[str, int] = field(default_factory=dict)


@event("TenantQuotaSet")
@dataclass(frozen=True, slots=True, kw_only=True)
class TenantQuotaSet(Event):
    """An admin changed one tenant's limits (aggregate: tenant id). The resources in `limits`
    get the tenant's own limit (``-1``: unlimited); those in `cleared` go back to the
    defaults; the others stay as they were."""

    limits: dict[str, int] = field(default_factory=dict)
    cleared: tuple[str, ...] = ()
