"""Virga's event types, one module per owning topic: what each service states as fact.

Importing this package registers every type in `virga_events.REGISTRY`.
"""

from virga_events.catalog import (
    api,
    attachments,
    billing,
    compute,
    flows,
    l3,
    network,
    quotas,
    scheduler,
    storage,
)
from virga_events.catalog.common import Flavor

__all__ = [
    "Flavor",
    "api",
    "attachments",
    "billing",
    "compute",
    "flows",
    "l3",
    "network",
    "quotas",
    "scheduler",
    "storage",
]
