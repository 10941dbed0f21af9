"""Reads of flavors: every caller sees them all."""

from __future__ import annotations

from virga_events.catalog import Flavor
from virga_gateway.cursor import EPOCH, OrderKey, take_page
from virga_gateway.flavors.views import FlavorList, FlavorView, flavor_view
from virga_gateway.state import GatewayState


def _key(flavor: Flavor) -> OrderKey:
    """Smallest first: the sizes zero-padded so that the text sorts as the numbers do."""
    size = f"{flavor.vcpus:06d}/{flavor.ram_mb:012d}/{flavor.disk_gb:09d}"
    return EPOCH, f"{size}/{flavor.name}"


def list_flavors(state: GatewayState, *, limit: int, after: OrderKey | None = None) -> FlavorList:
    """One page of flavors, smallest first (a small table every caller shares: sorted here)."""

    def shown(key: OrderKey) -> FlavorView | None:
        flavor = state.flavors.get(key[1].split("/", 3)[3])
        return None if flavor is None else flavor_view(flavor)

    order = sorted(_key(flavor) for flavor in state.flavors.values())
    items, next_cursor = take_page([order], after, limit, shown)
    return FlavorList(items=items, next=next_cursor)
