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


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedMove:
    """One live migration of a rebalancing plan."""

    instance_id: str
    source: str
    """The host the instance ran on when the plan was made."""
    destination: str
