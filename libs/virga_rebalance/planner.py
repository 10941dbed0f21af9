"""The greedy search: take the single move that lowers the score most, again and again.

The score is Ganeti hbal's: the spread (population standard deviation) of the utilisation of
the schedulable hosts, for RAM and for vCPU, weighted and added. Utilisation is what a host's
claims hold over what it may sell (physical times its allocation ratio), so a host is never
filled past its ratios: honouring them is how a host that guarantees its resources (ratio 1)
is never overcommitted by a move.

A move is legal when the placement filters would let the instance onto the destination:
schedulable (up, enabled, not draining) and able to receive a live migration, room for the
instance's vCPU, RAM and disk, the zone it asked for, the traits it requires, and its server
group's affinity or anti-affinity at host or rack scope (members that hold a claim count, as
in the scheduler's filter). Each instance moves at most once in a plan.

Speed: the score's sums and sums of squares are kept, so a candidate is scored in O(1) from
the two hosts it changes; each round looks at `Options.candidates` of the most utilised
hosts as sources and as many of the least utilised as destinations, and at one instance per
interchangeable kind (same size, zone and traits, no group) on each source.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from math import sqrt

from .model import Group, HostInput, InstanceInput, Move, Options, Plan

DEFAULT_OPTIONS = Options()


def score(hosts: Iterable[HostInput], options: Options = DEFAULT_OPTIONS) -> float:
    """The imbalance of ``hosts`` as they are (their ``used_*``), over the schedulable ones."""
    ram, cpu = [], []
    for host in hosts:
        if _scored(host):
            ram.append(host.used_ram_mb / host.ram_mb)
            cpu.append(host.used_vcpus / host.vcpus)
    return options.ram_weight * _spread(ram) + options.vcpu_weight * _spread(cpu)


def plan(
    hosts: Sequence[HostInput],
    instances: Sequence[InstanceInput],
    groups: Sequence[Group] = (),
    options: Options = DEFAULT_OPTIONS,
) -> Plan:
    """The moves that lower ``score`` most, best first. Deterministic: equal inputs, equal plan."""
    cluster = _Cluster(hosts, instances, groups, options)
    before = cluster.score()
    current, moves = before, list[Move]()
    while len(moves) < options.max_moves:
        best = cluster.best_move()
        if best is None or best[0] > current - options.min_gain:
            break
        current, instance, destination = best
        source = instance.host
        cluster.apply(instance, destination)
        moves.append(Move(instance.id, source, destination, current))
    after = cluster.score() if moves else before
    if moves:
        last = moves[-1]
        moves[-1] = Move(last.instance_id, last.source, last.destination, after)
    return Plan(tuple(moves), before, after)


def _scored(host: HostInput) -> bool:
    return host.schedulable and host.vcpus > 0 and host.ram_mb > 0


def _spread(values: Sequence[float]) -> float:
    if not values:
        return 0.0
    mean = sum(values) / len(values)
    return sqrt(max(sum((v - mean) ** 2 for v in values) / len(values), 0.0))


Kind = tuple[object, ...]
Change = tuple[float, float, float, float]


class _Cluster:
    """The hosts' usage as the plan so far leaves it, with the score's sums kept."""

    def __init__(
        self,
        hosts: Sequence[HostInput],
        instances: Sequence[InstanceInput],
        groups: Sequence[Group],
        options: Options,
    ) -> None:
        self.options = options
        self.hosts = {h.name: h for h in hosts}
        self.scored = sorted(h.name for h in hosts if _scored(h))
        self.used = {h.name: [h.used_vcpus, h.used_ram_mb, h.used_disk_gb] for h in hosts}
        self.groups = {g.id: g for g in groups}
        self.on_host: dict[str, dict[str, InstanceInput]] = {name: {} for name in self.scored}
        # Server-group members per host and per rack, so a rule is checked in O(1).
        self.members_at: dict[tuple[str, str, str], int] = {}
        self.members: dict[str, int] = {}
        for instance in sorted(instances, key=lambda i: i.id):
            if instance.movable and instance.host in self.on_host:
                self.on_host[instance.host][instance.id] = instance
            if instance.group is not None and instance.host in self.hosts:
                self._count(instance.group, instance.host, 1)
        self.kinds: dict[str, list[InstanceInput]] = {}
        n = len(self.scored) or 1
        self.n = n
        utils = [self._util(name) for name in self.scored]
        self.sums = [sum(u[0] for u in utils), sum(u[1] for u in utils)]
        self.squares = [sum(u[0] ** 2 for u in utils), sum(u[1] ** 2 for u in utils)]

    # -- the score --------------------------------------------------------------------------

    def _util(self, name: str) -> tuple[float, float]:
        host, used = self.hosts[name], self.used[name]
        return used[0] / host.vcpus, used[1] / host.ram_mb

    def score(self) -> float:
        cpu = [self._util(name)[0] for name in self.scored]
        ram = [self._util(name)[1] for name in self.scored]
        return self.options.ram_weight * _spread(ram) + self.options.vcpu_weight * _spread(cpu)

    def _load(self, name: str) -> float:
        cpu, ram = self._util(name)
        return self.options.vcpu_weight * cpu + self.options.ram_weight * ram

    def change(self, name: str, vcpus: int, ram_mb: int) -> Change:
        """How the score's sums move when host ``name`` gains ``vcpus`` and ``ram_mb`` (or
        loses them, negative): (vCPU sum, vCPU squares, RAM sum, RAM squares)."""
        host, used = self.hosts[name], self.used[name]
        cpu0, ram0 = used[0] / host.vcpus, used[1] / host.ram_mb
        cpu1, ram1 = (used[0] + vcpus) / host.vcpus, (used[1] + ram_mb) / host.ram_mb
        return cpu1 - cpu0, cpu1 * cpu1 - cpu0 * cpu0, ram1 - ram0, ram1 * ram1 - ram0 * ram0

    def score_with(self, source: Change, destination: Change) -> float:
        """The score once the two hosts of a move changed as said, from the kept sums."""
        n = self.n
        cpu_mean = (self.sums[0] + source[0] + destination[0]) / n
        ram_mean = (self.sums[1] + source[2] + destination[2]) / n
        cpu_var = (self.squares[0] + source[1] + destination[1]) / n - cpu_mean * cpu_mean
        ram_var = (self.squares[1] + source[3] + destination[3]) / n - ram_mean * ram_mean
        return self.options.ram_weight * sqrt(max(ram_var, 0.0)) + (
            self.options.vcpu_weight * sqrt(max(cpu_var, 0.0))
        )

    # -- the search -------------------------------------------------------------------------

    def best_move(self) -> tuple[float, InstanceInput, str] | None:
        """The legal move with the lowest resulting score (ties: instance id, then host)."""
        k = self.options.candidates
        loads = [(self._load(name), name) for name in self.scored]
        sources = [name for _, name in heapq.nlargest(k, loads) if self.on_host[name]]
        targets = [name for _, name in heapq.nsmallest(k, loads) if self.hosts[name].receives]
        best: tuple[float, str, str, InstanceInput] | None = None
        arrivals: dict[tuple[str, int, int], Change] = {}  # many instances share a size
        for source in sources:
            for instance in self._kinds(source):
                leaving = self.change(source, -instance.vcpus, -instance.ram_mb)
                for destination in targets:
                    if destination == source or not self.allows(instance, destination):
                        continue
                    size = (destination, instance.vcpus, instance.ram_mb)
                    arriving = arrivals.get(size)
                    if arriving is None:
                        arriving = arrivals[size] = self.change(*size)
                    key = (self.score_with(leaving, arriving), instance.id, destination)
                    if best is None or key < best[:3]:
                        best = (*key, instance)
        return None if best is None else (best[0], best[3], best[2])

    def _kinds(self, name: str) -> list[InstanceInput]:
        """One instance (the lowest id) per interchangeable kind on the host."""
        cached = self.kinds.get(name)
        if cached is None:
            seen: dict[Kind, InstanceInput] = {}
            for instance in self.on_host[name].values():
                kind: Kind = (
                    (instance.id,)
                    if instance.group is not None
                    else (
                        instance.vcpus,
                        instance.ram_mb,
                        instance.disk_gb,
                        instance.zone,
                        tuple(sorted(instance.traits)),
                    )
                )
                if kind not in seen or instance.id < seen[kind].id:
                    seen[kind] = instance
            cached = self.kinds[name] = sorted(seen.values(), key=lambda i: i.id)
        return cached

    def allows(self, instance: InstanceInput, name: str) -> bool:
        """Whether the placement rules let ``instance`` onto host ``name`` as things stand."""
        host, used = self.hosts[name], self.used[name]
        if not (host.schedulable and host.receives):
            return False
        if instance.zone is not None and host.zone != instance.zone:
            return False
        if not instance.traits <= host.traits:
            return False
        if (
            used[0] + instance.vcpus > host.vcpus
            or used[1] + instance.ram_mb > host.ram_mb
            or used[2] + instance.disk_gb > host.disk_gb
        ):
            return False
        return self._group_allows(instance, host)

    def _group_allows(self, instance: InstanceInput, host: HostInput) -> bool:
        if instance.group is None:
            return True
        group = self.groups.get(instance.group)
        if group is None:
            return False  # the scheduler refuses a group it does not know
        others = self.members.get(group.id, 0) - 1  # the instance itself is a member
        if others <= 0:
            return True
        own = self.hosts[instance.host]
        if group.scope == "host":
            sharing = self.members_at.get((group.id, "host", host.name), 0)
        else:
            sharing = self.members_at.get((group.id, "rack", host.rack), 0)
            sharing -= 1 if own.rack == host.rack else 0
        return sharing == 0 if group.policy == "anti-affinity" else sharing > 0

    def apply(self, instance: InstanceInput, destination: str) -> None:
        """Make the move: usage, the kept sums, server-group counts and the movable set."""
        source = instance.host
        for name in (source, destination):
            cpu, ram = self._util(name)
            self.sums[0] -= cpu
            self.sums[1] -= ram
            self.squares[0] -= cpu**2
            self.squares[1] -= ram**2
        sign = {source: -1, destination: 1}
        for name, s in sign.items():
            used = self.used[name]
            used[0] += s * instance.vcpus
            used[1] += s * instance.ram_mb
            used[2] += s * instance.disk_gb
            cpu, ram = self._util(name)
            self.sums[0] += cpu
            self.sums[1] += ram
            self.squares[0] += cpu**2
            self.squares[1] += ram**2
        if instance.group is not None:
            self._count(instance.group, source, -1)
            self._count(instance.group, destination, 1)
        del self.on_host[source][instance.id]  # it moves once: not listed on its destination
        self.kinds.pop(source, None)

    def _count(self, group: str, host: str, sign: int) -> None:
        rack = self.hosts[host].rack
        for key in ((group, "host", host), (group, "rack", rack)):
            self.members_at[key] = self.members_at.get(key, 0) + sign
        self.members[group] = self.members.get(group, 0) + sign
