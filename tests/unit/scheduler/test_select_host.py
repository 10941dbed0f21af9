"""Host selection: filters in a fixed order, the best-ranked host that passes, or a reason."""

from __future__ import annotations

from virga_scheduler.core.placement import (
    Claim,
    Host,
    NoValidHost,
    Placement,
    PlacementRequest,
    PlacementView,
    Policy,
    Rejection,
    ServerGroup,
    Weigher,
    select_host,
)
from virga_scheduler.core.placement.model import HostState


def host(
    name: str, rack: str = "r1", zone: str = "az1", *, down: bool = False, disabled: bool = False
) -> Host:
    state: HostState = "down" if down else "up"
    return Host(name, rack, zone, 4, 8192, 100, state=state, enabled=not disabled)


def request(instance_id: str = "i1", vcpus: int = 4, **constraints: str) -> PlacementRequest:
    return PlacementRequest(
        instance_id,
        "t1",
        vcpus,
        1024,
        10,
        availability_zone=constraints.get("zone"),
        server_group_id=constraints.get("group"),
    )


def place(view: PlacementView, req: PlacementRequest) -> tuple[PlacementView, str]:
    result = select_host(req, view)
    assert isinstance(result, Placement), result
    return view.claim(req, result.host), result.host


def refuse(view: PlacementView, req: PlacementRequest) -> NoValidHost:
    result = select_host(req, view)
    assert isinstance(result, NoValidHost), result
    return result


def test_rack_anti_affinity_spreads_three_members_over_three_racks_then_refuses_a_fourth() -> None:
    hosts = [host(f"h{r}{n}", rack=f"r{r}") for r in range(1, 4) for n in (1, 2)]
    members = frozenset({"web1", "web2", "web3", "web4"})
    view = PlacementView(
        hosts, server_groups=[ServerGroup("web", "anti-affinity", "rack", members)]
    )
    racks = set()
    for name in ("web1", "web2", "web3"):
        view, chosen = place(view, request(name, vcpus=1, group="web"))
        racks.add(view.hosts[chosen].rack)
    assert racks == {"r1", "r2", "r3"}
    refused = refuse(view, request("web4", vcpus=1, group="web"))
    assert refused.reason == (
        "no host fits: 6 hosts in a rack already running a member of anti-affinity group web"
    )
    assert refused.rejections[0].reason == (
        "host h11 is in rack r1, which already runs instance web1 of anti-affinity group web"
    )


def test_host_affinity_follows_the_first_member_wherever_it_landed() -> None:
    view = PlacementView(
        [host("h1"), host("h2"), host("h3")],
        server_groups=[ServerGroup("db", "affinity", "host", frozenset({"a", "b", "c"}))],
    )
    view, first = place(view, request("a", vcpus=1, group="db"))
    view, second = place(view, request("b", vcpus=1, group="db"))
    assert second == first
    # Once the members' host is full the group cannot grow, even with room elsewhere.
    view = view.add_claim(Claim("filler", first, 14, 0, 0))
    assert refuse(view, request("c", vcpus=1, group="db")).reason == (
        "no host fits: 2 hosts not running affinity group db, 1 host without 1 vCPU free"
    )


def test_the_reason_counts_hosts_per_cause_in_filter_order() -> None:
    view = PlacementView(
        [
            host("h1", down=True),
            host("h2", down=True),
            host("h3", disabled=True),
            host("h4", zone="az2"),
            host("h5"),
            host("h6"),
            host("h7"),
        ]
    )
    for n in (5, 6, 7):
        view = view.add_claim(Claim(f"busy{n}", f"h{n}", 14, 0, 0))
    refused = refuse(view, request(zone="az1"))
    assert refused.reason == (
        "no host fits: 2 hosts down, 1 host disabled, 1 host outside availability zone az1,"
        " 3 hosts without 4 vCPU free"
    )
    assert [r.host for r in refused.rejections] == [f"h{n}" for n in range(1, 8)]


def test_a_reschedule_avoids_the_host_that_failed_and_says_so_when_nothing_else_is_left() -> None:
    view = PlacementView([host("h1"), host("h2")])
    first = PlacementRequest("i1", "t1", 1, 1024, 10)
    retry = PlacementRequest("i1", "t1", 1, 1024, 10, excluded_hosts=frozenset({"h1"}))
    assert select_host(first, view) == Placement("i1", "h1", ())
    assert select_host(retry, view) == Placement(
        "i1",
        "h2",
        (
            Rejection(
                "excluded",
                "h1",
                "that already failed this instance",
                "host h1 already failed to boot instance i1",
            ),
        ),
    )
    last = PlacementRequest("i1", "t1", 1, 1024, 10, excluded_hosts=frozenset({"h1", "h2"}))
    assert refuse(view, last).reason == "no host fits: 2 hosts that already failed this instance"


def test_a_placement_explains_why_better_ranked_hosts_were_passed_over() -> None:
    # h1 has the most free vCPU and RAM, so spreading ranks it first, but its disk is full.
    view = PlacementView([host("h1"), host("h2"), host("h3")])
    view = view.add_claim(Claim("x", "h1", 0, 0, 100)).add_claim(Claim("y", "h2", 2, 0, 0))
    result = select_host(request(vcpus=1), view)
    assert isinstance(result, Placement)
    assert result.host == "h3"
    assert [r.reason for r in result.rejections] == [
        "host h1 needs 10 GB disk, 0 free of 100 (100 physical at ratio 1)"
    ]


def test_an_empty_fleet_says_so() -> None:
    assert refuse(PlacementView(), request()).reason == "no host fits: there are no hosts"


def test_a_long_list_of_causes_is_cut_to_a_sentence() -> None:
    # Seven hosts, each missing a different combination of the three required traits.
    owned = ["", "A", "B", "C", "AB", "AC", "BC"]
    hosts = [
        Host(f"h{n}", "r1", "az1", 4, 8192, 100, traits=frozenset(t)) for n, t in enumerate(owned)
    ]
    req = PlacementRequest("i1", "t1", 1, 1024, 10, required_traits=frozenset("ABC"))
    assert refuse(PlacementView(hosts), req).reason == (
        "no host fits: 1 host without trait A, 1 host without trait B, 1 host without trait C,"
        " 1 host without traits A, B, 1 host without traits A, B, C, 2 hosts for other reasons"
    )


def test_equal_input_gives_equal_output() -> None:
    hosts = [host(f"h{n}", rack=f"r{n % 3}", zone=f"az{n % 2}") for n in range(30)]
    view = PlacementView(hosts)
    first = [select_host(request(f"i{n}", vcpus=1 + n % 4), view) for n in range(20)]
    again = [
        select_host(request(f"i{n}", vcpus=1 + n % 4), PlacementView(reversed(hosts)))
        for n in range(20)
    ]
    assert first == again


def test_a_request_that_exactly_fills_what_is_left_is_placed() -> None:
    view = PlacementView([host("h1")]).add_claim(Claim("x", "h1", 12, 7168, 90))
    for weigher in Weigher:
        result = select_host(request(vcpus=4), view, Policy(weigher))
        assert isinstance(result, Placement), (weigher, result)
