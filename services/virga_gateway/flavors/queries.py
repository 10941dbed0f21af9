"""Reads of flavors: every caller sees them all."""

from __future__ import annotations

from virga_gateway.flavors.views import FlavorList, flavor_view
from virga_gateway.state import GatewayState


def list_flavors(state: GatewayState) -> FlavorList:
    flavors = sorted(state.flavors.values(), key=lambda f: (f.vcpus, f.ram_mb, f.disk_gb, f.name))
    return FlavorList(items=[flavor_view(f) for f in flavors])
