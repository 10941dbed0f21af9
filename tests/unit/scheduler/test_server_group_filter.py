"""The server-group filter keeps members together (affinity) or apart (anti-affinity)."""

from __future__ import annotations

from virga_scheduler.core.placement import (
    Claim,
    Host,
    PlacementRequest,
    PlacementView,
    ServerGroup,
)
from virga_scheduler.core.placement.filters.server_group import server_group
from virga_scheduler.core.placement.model import GroupPolicy, GroupScope

# Two racks of two hosts: h1, h2 in r1; h3, h4 in r2.
HOSTS = [Host(f"h{n}", f"r{(n + 1) // 2}", "az1", 8, 16384, 200) for n in range(1, 5)]
REQUEST = PlacementRequest("new", "t1", 1, 512, 10, server_group_id="g1")


def view_with_member_on(host: str | None, policy: GroupPolicy, scope: GroupScope) -> PlacementView:
    view = PlacementView(
        HOSTS, server_groups=[ServerGroup("g1", policy, scope, frozenset({"a", "new"}))]
    )
    return view if host is None else view.add_claim(Claim("a", host, 1, 512, 10))


def reasons(view: PlacementView, request: PlacementRequest = REQUEST) -> dict[str, str | None]:
    results = {h.name: server_group(h, request, view) for h in HOSTS}
    return {name: None if r is None else r.reason for name, r in results.items()}


def test_anti_affinity_by_host_refuses_only_the_members_host() -> None:
    assert reasons(view_with_member_on("h1", "anti-affinity", "host")) == {
        "h1": "host h1 already runs instance a of anti-affinity group g1",
        "h2": None,
        "h3": None,
        "h4": None,
    }


def test_anti_affinity_by_rack_refuses_every_host_in_the_members_rack() -> None:
    assert reasons(view_with_member_on("h1", "anti-affinity", "rack")) == {
        "h1": "host h1 is in rack r1, which already runs instance a of anti-affinity group g1",
        "h2": "host h2 is in rack r1, which already runs instance a of anti-affinity group g1",
        "h3": None,
        "h4": None,
    }


def test_affinity_by_host_accepts_only_the_members_host() -> None:
    assert reasons(view_with_member_on("h3", "affinity", "host")) == {
        "h1": "host h1 is not where affinity group g1 runs (h3)",
        "h2": "host h2 is not where affinity group g1 runs (h3)",
        "h3": None,
        "h4": "host h4 is not where affinity group g1 runs (h3)",
    }


def test_affinity_by_rack_accepts_any_host_in_the_members_rack() -> None:
    assert reasons(view_with_member_on("h3", "affinity", "rack")) == {
        "h1": "host h1 is in rack r1, affinity group g1 runs in r2",
        "h2": "host h2 is in rack r1, affinity group g1 runs in r2",
        "h3": None,
        "h4": None,
    }


def test_affinity_with_no_placed_member_yet_allows_any_host() -> None:
    assert set(reasons(view_with_member_on(None, "affinity", "host")).values()) == {None}


def test_the_instance_own_old_claim_does_not_constrain_its_reschedule() -> None:
    view = view_with_member_on(None, "anti-affinity", "host").add_claim(
        Claim("new", "h1", 1, 512, 10)
    )
    assert set(reasons(view).values()) == {None}


def test_an_unknown_group_refuses_every_host_rather_than_ignore_the_policy() -> None:
    request = PlacementRequest("new", "t1", 1, 512, 10, server_group_id="nope")
    assert set(reasons(PlacementView(HOSTS), request).values()) == {
        "server group nope does not exist"
    }


def test_requests_outside_any_group_are_not_constrained() -> None:
    view = view_with_member_on("h1", "anti-affinity", "host")
    request = PlacementRequest("other", "t1", 1, 512, 10)
    assert set(reasons(view, request).values()) == {None}
