"""The fleet between inventory changes: hosts, what each may sell, and hosts by rack and trait.

Inventory changes (a host added, resized, moved; ratios changed) are rare, so they rebuild it.
Status changes (up/down, enabled) are not: ``with_status`` shares everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

from .model import AllocationRatios, Host


@dataclass(frozen=True, slots=True)
class HostLimits:
    """What a host may sell: physical capacity times its allocation ratios."""

    vcpus: float
    """vCPU limit."""
    ram_mb: float
    """RAM limit in MB."""
    disk_gb: float
    """Disk limit in GB."""
    ratios: AllocationRatios
    """The ratios applied: the host's admin override, else the global ones."""


class Inventory:
    """Immutable. Built from hosts and ratios; everything else is derived once, here."""

    __slots__ = (
        "hosts",
        "limits",
        "names",
        "racks",
        "ratio_overrides",
        "ratios",
        "scale",
        "traits",
    )

    def __init__(
        self,
        hosts: Iterable[Host] = (),
        ratios: AllocationRatios | None = None,
        ratio_overrides: Mapping[str, AllocationRatios] | None = None,
    ) -> None:
        self.hosts: Mapping[str, Host] = MappingProxyType({h.name: h for h in hosts})
        """Every known host by name, schedulable or not."""
        self.ratios = AllocationRatios() if ratios is None else ratios
        """Global allocation ratios."""
        self.ratio_overrides: Mapping[str, AllocationRatios] = MappingProxyType(
            dict(ratio_overrides or {})
        )
        """Per-host ratios set by administrators; they replace the global ones for that host."""
        self.limits: Mapping[str, HostLimits] = {
            name: _limits(host, self.ratio_overrides.get(name, self.ratios))
            for name, host in self.hosts.items()
        }
        """Each host's limits, so a capacity check is a lookup and three subtractions."""
        self.scale = (
            max((lim.vcpus for lim in self.limits.values()), default=0.0) or 1.0,
            max((lim.ram_mb for lim in self.limits.values()), default=0.0) or 1.0,
        )
        """The fleet's largest vCPU and RAM limits, which weighers normalize scores by."""
        self.names = tuple(sorted(self.hosts))
        """Host names, sorted: the order explanations list hosts in."""
        self.racks = _by_key(self.hosts.values(), lambda host: (host.rack,))
        """Host names per rack."""
        self.traits = _by_key(self.hosts.values(), lambda host: host.traits)
        """Host names per trait."""

    def with_host(self, host: Host) -> Inventory:
        """The inventory with ``host`` added or replaced."""
        old = self.hosts.get(host.name)
        if old is not None and replace(old, state=host.state, enabled=host.enabled) == host:
            # Only the status moved (or nothing did): limits, scale and indexes all still hold.
            inventory: Inventory = Inventory.__new__(Inventory)
            for slot in Inventory.__slots__:
                setattr(inventory, slot, getattr(self, slot))
            inventory.hosts = MappingProxyType({**self.hosts, host.name: host})
            return inventory
        others = [h for h in self.hosts.values() if h.name != host.name]
        return Inventory([*others, host], self.ratios, self.ratio_overrides)

    def without_host(self, name: str) -> Inventory:
        others = (host for host in self.hosts.values() if host.name != name)
        return Inventory(others, self.ratios, self.ratio_overrides)

    def with_ratios(self, ratios: AllocationRatios) -> Inventory:
        return Inventory(self.hosts.values(), ratios, self.ratio_overrides)

    def with_ratio_override(self, host: str, ratios: AllocationRatios | None) -> Inventory:
        """Set (or with None, clear) an administrator's ratios for one host."""
        overrides = {name: r for name, r in self.ratio_overrides.items() if name != host}
        if ratios is not None:
            overrides[host] = ratios
        return Inventory(self.hosts.values(), self.ratios, overrides)


def _limits(host: Host, ratios: AllocationRatios) -> HostLimits:
    return HostLimits(
        host.vcpus * ratios.cpu, host.ram_mb * ratios.ram, host.disk_gb * ratios.disk, ratios
    )


def _by_key(
    hosts: Iterable[Host], keys_of: Callable[[Host], Iterable[str]]
) -> Mapping[str, frozenset[str]]:
    found: dict[str, set[str]] = {}
    for host in hosts:
        for key in keys_of(host):
            found.setdefault(key, set()).add(host.name)
    return {key: frozenset(names) for key, names in found.items()}
