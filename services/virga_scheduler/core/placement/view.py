"""The scheduler's read model: inventory, claims and server groups, with hosts kept in rank order.

A ``PlacementView`` is immutable; every update returns a new view. Claims and host status
changes (frequent) re-rank one host in microseconds; inventory and ratio changes (rare) re-rank
the fleet.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from .claims import Claims
from .inventory import HostLimits, Inventory
from .model import (
    AllocationRatios,
    Claim,
    Host,
    MemberLocation,
    PlacementRequest,
    ServerGroup,
    Usage,
)
from .persistent import Key, PMap
from .ranking import Entry, Ranking
from .weighers import Weigher, rank_key, score


class PlacementView:
    """Everything filters and weighers read, with per-host limits precomputed for O(1) checks."""

    __slots__ = ("_groups", "_members_memo", "_ranking", "claims", "inventory")

    def __init__(
        self,
        hosts: Iterable[Host] = (),
        *,
        claims: Claims | None = None,
        server_groups: Iterable[ServerGroup] = (),
        ratios: AllocationRatios | None = None,
        ratio_overrides: Mapping[str, AllocationRatios] | None = None,
    ) -> None:
        self.inventory = Inventory(hosts, ratios, ratio_overrides)
        """Hosts, their limits, and hosts by rack and trait."""
        self.claims = Claims() if claims is None else claims
        """The ledger usage comes from."""
        self._groups: PMap[str, ServerGroup] = PMap()
        for group in server_groups:
            self._groups = self._groups.set(group.id, group)
        self._members_memo: tuple[ServerGroup, str, tuple[MemberLocation, ...]] | None = None
        self._ranking = self._rank_fleet()

    # -- reads -------------------------------------------------------------------------------

    @property
    def hosts(self) -> Mapping[str, Host]:
        """Every known host by name, schedulable or not."""
        return self.inventory.hosts

    def host_names(self) -> tuple[str, ...]:
        """All host names, sorted."""
        return self.inventory.names

    def limits_of(self, host: str) -> HostLimits:
        return self.inventory.limits[host]

    def usage_of(self, host: str) -> Usage:
        return self.claims.usage_of(host)

    def server_group(self, group_id: str) -> ServerGroup | None:
        return self._groups.get(group_id)

    def member_locations(self, group: ServerGroup, excluding: str) -> tuple[MemberLocation, ...]:
        """Where the group's placed members run, by instance id; ``excluding`` is the instance
        being placed, whose own old claim (on a reschedule) must not constrain it."""
        # One decision asks this for every host it checks; the view is immutable, so the
        # answer for the last (group, instance) asked is kept.
        memo = self._members_memo
        if memo is not None and memo[0] is group and memo[1] == excluding:
            return memo[2]
        hosts, located = self.inventory.hosts, []
        for member in sorted(group.members):
            held = self.claims.get(member)
            if held is not None and member != excluding and held.host in hosts:
                located.append(MemberLocation(member, held.host, hosts[held.host].rack))
        self._members_memo = (group, excluding, tuple(located))
        return self._members_memo[2]

    def hosts_in_rack(self, rack: str) -> frozenset[str]:
        return self.inventory.racks.get(rack, frozenset())

    def hosts_with_trait(self, trait: str) -> frozenset[str]:
        return self.inventory.traits.get(trait, frozenset())

    def request_score(self, request: PlacementRequest) -> float:
        """The score of exactly the request's vCPU and RAM: every host that fits scores at least
        this much, so the walk stops there."""
        return score(request.vcpus, request.ram_mb, *self.inventory.scale)

    def score_of(self, host: str) -> float:
        """The host's free-capacity score (see ``weighers``)."""
        used, limits = self.claims.usage_of(host), self.inventory.limits[host]
        free_vcpus, free_ram_mb = limits.vcpus - used.vcpus, limits.ram_mb - used.ram_mb
        return score(free_vcpus, free_ram_mb, *self.inventory.scale)

    def rank_key(self, weigher: Weigher, host: str) -> Key:
        return rank_key(weigher, self.score_of(host), host)

    def ranked(self, weigher: Weigher, zone: str | None, at_least: float) -> Iterator[str]:
        """Up and enabled hosts best-first, within ``zone`` if given, down to score ``at_least``."""
        return self._ranking.walk(weigher, zone, at_least)

    # -- updates -----------------------------------------------------------------------------

    def claim(self, request: PlacementRequest, host: str) -> PlacementView:
        return self.add_claim(Claim.for_request(request, host))

    def add_claim(self, claim: Claim) -> PlacementView:
        """The view with ``claim`` recorded, e.g. when folding an ``InstanceScheduled`` event."""
        # A replaced claim (redelivery or move) changes usage on its old host too.
        old = self.claims.get(claim.instance_id)
        touched = {claim.host} if old is None else {claim.host, old.host}
        return self._with(claims=self.claims.add(claim), touched=touched)

    def release(self, instance_id: str) -> PlacementView:
        old = self.claims.get(instance_id)
        if old is None:
            return self
        return self._with(claims=self.claims.release(instance_id), touched={old.host})

    def with_host(self, host: Host) -> PlacementView:
        """The view with ``host`` added or replaced (status, inventory, or both)."""
        return self._with(inventory=self.inventory.with_host(host), touched={host.name})

    def without_host(self, name: str) -> PlacementView:
        return self._with(inventory=self.inventory.without_host(name))

    def with_ratios(self, ratios: AllocationRatios) -> PlacementView:
        return self._with(inventory=self.inventory.with_ratios(ratios))

    def with_ratio_override(self, host: str, ratios: AllocationRatios | None) -> PlacementView:
        """Set (or with None, clear) an administrator's ratios for one host."""
        return self._with(inventory=self.inventory.with_ratio_override(host, ratios))

    def with_server_group(self, group: ServerGroup) -> PlacementView:
        return self._with(groups=self._groups.set(group.id, group))

    def without_server_group(self, group_id: str) -> PlacementView:
        return self._with(groups=self._groups.delete(group_id))

    # -- internals ---------------------------------------------------------------------------

    def _with(
        self,
        *,
        inventory: Inventory | None = None,
        claims: Claims | None = None,
        groups: PMap[str, ServerGroup] | None = None,
        touched: set[str] | None = None,
    ) -> PlacementView:
        """A copy with the given parts replaced, re-ranking only ``touched`` hosts when the
        limits are unchanged, else the whole fleet (the score scale may have moved)."""
        view: PlacementView = PlacementView.__new__(PlacementView)
        view.inventory = self.inventory if inventory is None else inventory
        view.claims = self.claims if claims is None else claims
        view._groups = self._groups if groups is None else groups
        view._members_memo = None
        if view.inventory.limits is not self.inventory.limits:
            view._ranking = view._rank_fleet()
            return view
        view._ranking = self._ranking
        for name in sorted(touched or ()):
            view._ranking = view._ranking.moved(name, self._entry(name), view._entry(name))
        return view

    def _rank_fleet(self) -> Ranking:
        entries = ((name, self._entry(name)) for name in self.inventory.names)
        return Ranking((name, entry) for name, entry in entries if entry is not None)

    def _entry(self, name: str) -> Entry | None:
        """Where ``name`` sits in the ranking; None keeps down, disabled and unknown hosts out."""
        host = self.inventory.hosts.get(name)
        if host is None or host.state != "up" or not host.enabled:
            return None
        return host.zone, self.score_of(name)
