"""The flavors every cloud starts with; the projection keeps flavors as the contract's `Flavor`."""

from __future__ import annotations

from virga_events.catalog import Flavor

DEFAULT_FLAVORS = (
    Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1),
    Flavor(name="m1.small", vcpus=1, ram_mb=2048, disk_gb=20),
    Flavor(name="m1.medium", vcpus=2, ram_mb=4096, disk_gb=40),
    Flavor(name="m1.large", vcpus=4, ram_mb=8192, disk_gb=80),
)
