"""The rebalancer's planner: it lowers the score, never breaks a placement rule, and is
deterministic; a balanced cluster gets no plan."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from virga_rebalance import Group, HostInput, InstanceInput, Options, Plan, plan, score


def host(name: str, *, rack: str = "r1", zone: str = "z1", **kw: object) -> HostInput:
    fields: dict[str, object] = {"vcpus": 16.0, "ram_mb": 16384.0, "disk_gb": 500.0, **kw}
    return HostInput(name, rack, zone, **fields)  # type: ignore[arg-type]


def with_usage(hosts: list[HostInput], instances: list[InstanceInput]) -> list[HostInput]:
    used = {h.name: [0, 0, 0] for h in hosts}
    for i in instances:
        used[i.host][0] += i.vcpus
        used[i.host][1] += i.ram_mb
        used[i.host][2] += i.disk_gb
    return [
        replace(h, used_vcpus=u[0], used_ram_mb=u[1], used_disk_gb=u[2])
        for h, u in ((h, used[h.name]) for h in hosts)
    ]


def applied(
    hosts: list[HostInput], instances: list[InstanceInput], result: Plan
) -> tuple[list[HostInput], list[InstanceInput]]:
    where = {m.instance_id: m.destination for m in result.moves}
    moved = [replace(i, host=where.get(i.id, i.host)) for i in instances]
    return with_usage(hosts, moved), moved


def broken_rules(
    hosts: list[HostInput], instances: list[InstanceInput], groups: list[Group], result: Plan
) -> list[str]:
    """Every placement rule a plan breaks, checked move after move as the moves are made."""
    by_name = {h.name: h for h in hosts}
    groups_by_id = {g.id: g for g in groups}
    current = {i.id: i for i in instances}
    broken, seen = [], set()
    for move in result.moves:
        instance = current[move.instance_id]
        dest = by_name[move.destination]
        if move.instance_id in seen:
            broken.append(f"{move.instance_id} moved twice")
        seen.add(move.instance_id)
        if instance.host != move.source or not instance.movable:
            broken.append(f"{move.instance_id} is not movable from {move.source}")
        if not (dest.schedulable and dest.receives) or not by_name[move.source].schedulable:
            broken.append(f"{move.destination} may not take or give instances")
        if instance.zone is not None and dest.zone != instance.zone:
            broken.append(f"{move.instance_id} left its zone")
        if not instance.traits <= dest.traits:
            broken.append(f"{move.instance_id} lacks traits on {dest.name}")
        current[instance.id] = replace(instance, host=dest.name)
        usage = {h.name: h for h in with_usage(hosts, list(current.values()))}
        h = usage[dest.name]
        if h.used_vcpus > h.vcpus or h.used_ram_mb > h.ram_mb or h.used_disk_gb > h.disk_gb:
            broken.append(f"{dest.name} overcommitted past its ratios")
        if instance.group is not None:
            group = groups_by_id[instance.group]
            others = [
                by_name[o.host]
                for o in current.values()
                if o.group == group.id and o.id != instance.id
            ]
            by_rack = group.scope == "rack"
            sharing = [o for o in others if (o.rack == dest.rack if by_rack else o is dest)]
            if group.policy == "anti-affinity" and sharing:
                broken.append(f"{instance.id} joins a member of {group.id}")
            if group.policy == "affinity" and others and not sharing:
                broken.append(f"{instance.id} leaves the members of {group.id}")
    return broken


def test_six_instances_on_one_of_three_hosts_spread_out() -> None:
    instances = [InstanceInput(f"i{n}", "h1", 1, 1024, 10) for n in range(6)]
    hosts = with_usage([host("h1"), host("h2"), host("h3")], instances)
    result = plan(hosts, instances)
    assert result.score_after == 0.0 < result.score_before
    after, _ = applied(hosts, instances, result)
    assert [h.used_vcpus for h in after] == [2, 2, 2]
    assert result.moves[-1].score_after == result.score_after


def test_a_balanced_cluster_gets_an_empty_plan() -> None:
    instances = [InstanceInput(f"i{n}", f"h{n % 3}", 2, 2048, 10) for n in range(9)]
    hosts = with_usage([host("h0"), host("h1"), host("h2")], instances)
    result = plan(hosts, instances)
    assert result.moves == ()
    assert result.score_before == result.score_after == 0.0


def test_no_move_goes_to_a_host_that_cannot_take_it() -> None:
    instances = [
        InstanceInput("a", "h1", 1, 1024, 10, zone="z1"),
        InstanceInput("b", "h1", 1, 1024, 10, traits=frozenset({"GPU"})),
        InstanceInput("c", "h1", 1, 1024, 10, movable=False),
    ]
    hosts = with_usage(
        [
            host("h1"),
            host("other-zone", zone="z2"),
            host("disabled", schedulable=False),
            host("deaf", receives=False),
            host("tiny", vcpus=0.5),
        ],
        instances,
    )
    result = plan(hosts, instances)
    assert result.moves == ()


def test_server_groups_hold_at_host_and_rack_scope() -> None:
    groups = [Group("anti", "anti-affinity", "rack"), Group("aff", "affinity", "host")]
    instances = [
        InstanceInput("x1", "a1", 2, 4096, 10, group="anti"),
        InstanceInput("x2", "b1", 2, 4096, 10, group="anti"),
        InstanceInput("y1", "a1", 2, 4096, 10, group="aff"),
        InstanceInput("y2", "a1", 2, 4096, 10, group="aff"),
    ]
    hosts = with_usage(
        [host("a1", rack="a"), host("a2", rack="a"), host("b1", rack="b"), host("b2", rack="b")],
        instances,
    )
    result = plan(hosts, instances, groups)
    # x1 may not join x2's rack b, and y1, y2 only go where the other runs: x1 to a2 is the
    # one legal move, and it lowers the score.
    assert [(m.instance_id, m.destination) for m in result.moves] == [("x1", "a2")]
    assert broken_rules(hosts, instances, groups, result) == []


def test_the_plan_is_deterministic() -> None:
    instances = [
        InstanceInput(f"i{n:02d}", "h1", 1 + n % 3, 1024 * (1 + n % 2), 10) for n in range(20)
    ]
    hosts = with_usage([host(f"h{n}") for n in range(1, 6)], instances)
    assert plan(hosts, instances) == plan(list(reversed(hosts)), list(reversed(instances)))


flavors = st.sampled_from([(1, 1024, 10), (2, 2048, 20), (4, 8192, 40), (1, 4096, 10)])


@st.composite
def clusters(draw: st.DrawFn) -> tuple[list[HostInput], list[InstanceInput], list[Group]]:
    count = draw(st.integers(2, 7))
    hosts = [
        host(
            f"h{n}",
            rack=f"r{draw(st.integers(0, 2))}",
            zone=draw(st.sampled_from(["z1", "z2"])),
            vcpus=float(draw(st.sampled_from([8, 16, 32]))),
            ram_mb=float(draw(st.sampled_from([16384, 32768]))),
            traits=draw(st.sampled_from([frozenset(), frozenset({"GPU"})])),
            schedulable=draw(st.booleans()) or n == 0,
            receives=draw(st.integers(0, 5)) > 0,
        )
        for n in range(count)
    ]
    groups = [
        Group("g-anti-host", "anti-affinity", "host"),
        Group("g-anti-rack", "anti-affinity", "rack"),
        Group("g-aff-host", "affinity", "host"),
        Group("g-aff-rack", "affinity", "rack"),
    ]
    instances: list[InstanceInput] = []
    used = {h.name: [0, 0, 0] for h in hosts}
    for n in range(draw(st.integers(0, 25))):
        target = hosts[draw(st.integers(0, count - 1))]
        vcpus, ram, disk = draw(flavors)
        u = used[target.name]
        if u[0] + vcpus > target.vcpus or u[1] + ram > target.ram_mb:
            continue
        u[0], u[1], u[2] = u[0] + vcpus, u[1] + ram, u[2] + disk
        instances.append(
            InstanceInput(
                f"i{n:02d}",
                target.name,
                vcpus,
                ram,
                disk,
                zone=draw(st.sampled_from([None, target.zone])),
                group=draw(st.sampled_from([None, None, *(g.id for g in groups)])),
                traits=draw(st.sampled_from([frozenset(), target.traits])),
                movable=draw(st.integers(0, 5)) > 0,
            )
        )
    return with_usage(hosts, instances), instances, groups


@settings(max_examples=300, deadline=None)
@given(clusters(), st.integers(1, 30))
def test_a_plan_never_breaks_a_rule_and_lowers_the_score(
    cluster: tuple[list[HostInput], list[InstanceInput], list[Group]], max_moves: int
) -> None:
    hosts, instances, groups = cluster
    options = Options(max_moves=max_moves)
    result = plan(hosts, instances, groups, options)
    assert len(result.moves) <= max_moves
    assert broken_rules(hosts, instances, groups, result) == []
    assert abs(result.score_before - score(hosts, options)) < 1e-9
    after, _ = applied(hosts, instances, result)
    assert abs(score(after, options) - result.score_after) < 1e-9
    assert result.score_after <= result.score_before
    if result.moves:
        assert result.score_after < result.score_before
        steps = [result.score_before, *(m.score_after for m in result.moves)]
        assert all(b < a for a, b in itertools.pairwise(steps))
    assert plan(hosts, instances, groups, options) == result
