"""Response bodies of flavors."""

from __future__ import annotations

import msgspec

from virga_events.catalog import Flavor


class _View(msgspec.Struct, kw_only=True):
    """A response body."""


class FlavorView(_View):
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int


class FlavorList(_View):
    items: list[FlavorView]
    next: str | None
    """Cursor of the next page (pass it as ?cursor=), or null on the last page."""


def flavor_view(flavor: Flavor) -> FlavorView:
    return FlavorView(
        name=flavor.name, vcpus=flavor.vcpus, ram_mb=flavor.ram_mb, disk_gb=flavor.disk_gb
    )
