"""Property: the fast walk picks exactly what filtering and weighing every host would pick.

The view keeps hosts ranked and the scheduler stops at the first host that passes; this checks
that shortcut against the obvious algorithm on random fleets, claims, groups and host changes.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from virga_scheduler.core.placement import (
    Host,
    NoValidHost,
    Placement,
    PlacementRequest,
    PlacementView,
    Policy,
    ServerGroup,
    Weigher,
    select_host,
)
from virga_scheduler.core.placement.scheduler import first_rejection

INSTANCES = [f"i{n}" for n in range(12)]
TRAITS = frozenset({"SSD", "GPU"})

hosts = st.lists(
    st.builds(
        Host,
        name=st.sampled_from([f"h{n:02d}" for n in range(30)]),
        rack=st.sampled_from(["r1", "r2", "r3"]),
        zone=st.sampled_from(["az1", "az2"]),
        vcpus=st.sampled_from([1, 2, 4]),
        ram_mb=st.sampled_from([2048, 4096, 8192]),
        disk_gb=st.sampled_from([20, 40, 80]),
        traits=st.frozensets(st.sampled_from(sorted(TRAITS))),
        state=st.sampled_from(["up", "up", "up", "down"]),
        enabled=st.booleans() | st.just(True),
    ),
    max_size=30,
    unique_by=lambda h: h.name,
)
groups = st.lists(
    st.builds(
        ServerGroup,
        id=st.sampled_from(["g1", "g2", "g3"]),
        policy=st.sampled_from(["affinity", "anti-affinity"]),
        scope=st.sampled_from(["host", "rack"]),
        members=st.frozensets(st.sampled_from(INSTANCES)),
    ),
    max_size=3,
    unique_by=lambda g: g.id,
)
requests = st.builds(
    PlacementRequest,
    instance_id=st.sampled_from(INSTANCES),
    tenant_id=st.just("t1"),
    vcpus=st.integers(0, 6),
    ram_mb=st.sampled_from([0, 512, 1024, 4096]),
    disk_gb=st.sampled_from([0, 10, 30]),
    availability_zone=st.sampled_from([None, "az1", "az2", "az9"]),
    server_group_id=st.sampled_from([None, "g1", "g2", "g3", "g9"]),
    required_traits=st.frozensets(st.sampled_from(sorted(TRAITS))),
    excluded_hosts=st.frozensets(st.sampled_from([f"h{n:02d}" for n in range(30)]), max_size=3),
)


def brute_force(request: PlacementRequest, view: PlacementView, weigher: Weigher) -> str | None:
    passing = [
        h for h in view.host_names() if first_rejection(view.hosts[h], request, view) is None
    ]
    return min(passing, key=lambda h: view.rank_key(weigher, h), default=None)


@settings(max_examples=300, deadline=None, database=None)
@given(fleet=hosts, server_groups=groups, steps=st.lists(st.tuples(requests, st.integers(0, 9))))
def test_select_host_matches_filtering_and_weighing_every_host(
    fleet: list[Host], server_groups: list[ServerGroup], steps: list[tuple[PlacementRequest, int]]
) -> None:
    view = PlacementView(fleet, server_groups=server_groups)
    for request, action in steps:
        weigher = Weigher.PACK if action % 2 else Weigher.SPREAD
        result = select_host(request, view, Policy(weigher))
        expected = brute_force(request, view, weigher)
        if expected is None:
            assert isinstance(result, NoValidHost)
            assert [r.host for r in result.rejections] == list(view.host_names())
        else:
            assert isinstance(result, Placement)
            assert result.host == expected
            view = view.claim(request, result.host)
        # Churn that moves hosts in the ranking: deletes, hosts going down and coming back.
        if action == 7:
            view = view.release(INSTANCES[len(view.claims) % len(INSTANCES)])
        if action >= 8 and fleet:
            flipped = fleet[len(view.claims) % len(fleet)]
            current = view.hosts[flipped.name]
            view = view.with_host(
                Host(
                    current.name, current.rack, current.zone, current.vcpus, current.ram_mb,
                    current.disk_gb, current.traits,
                    state="down" if current.state == "up" else "up",
                    enabled=not current.enabled if action == 9 else current.enabled,
                )
            )  # fmt: skip
