"""Value types shared by several event types."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Flavor:
    """The size of an instance, copied into the request so later readers need no flavor table."""

    name: str
    """Flavor name, e.g. ``m1.small``."""
    vcpus: int
    """Virtual CPUs."""
    ram_mb: int
    """Memory in MiB."""
    disk_gb: int
    """Root disk size in GiB."""
