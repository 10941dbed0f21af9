"""The view follows claims and host changes, and old views stay valid for what they saw."""

from __future__ import annotations

import pytest

from virga_scheduler.core.placement import (
    Claim,
    Claims,
    Host,
    NoValidHost,
    Placement,
    PlacementRequest,
    PlacementView,
    ServerGroup,
    Usage,
    select_host,
)

H1 = Host("h1", "r1", "az1", 4, 8192, 100)
H2 = Host("h2", "r2", "az1", 4, 8192, 100)
REQUEST = PlacementRequest("i1", "t1", 1, 1024, 10)


def chosen(view: PlacementView, request: PlacementRequest = REQUEST) -> str | None:
    result = select_host(request, view)
    return result.host if isinstance(result, Placement) else None


def test_a_host_going_down_stops_receiving_instances_and_coming_back_restores_it() -> None:
    view = PlacementView([H1, H2]).add_claim(Claim("x", "h2", 1, 0, 0))
    assert chosen(view) == "h1"
    down = view.with_host(Host("h1", "r1", "az1", 4, 8192, 100, state="down"))
    assert chosen(down) == "h2"
    assert chosen(down.with_host(H1)) == "h1"
    assert chosen(view) == "h1"  # the old view is untouched


def test_disabling_a_host_for_maintenance_takes_it_out_of_scheduling() -> None:
    view = PlacementView([H1]).with_host(Host("h1", "r1", "az1", 4, 8192, 100, enabled=False))
    result = select_host(REQUEST, view)
    assert isinstance(result, NoValidHost)
    assert result.reason == "no host fits: 1 host disabled"


def test_new_and_resized_hosts_are_scheduled_on() -> None:
    view = PlacementView([H1]).with_host(Host("h9", "r1", "az1", 64, 262144, 1000))
    assert chosen(view) == "h9"
    view = view.with_host(Host("h9", "r1", "az1", 1, 1024, 10))
    assert chosen(view) == "h1"
    assert view.without_host("h1").host_names() == ("h9",)


def test_claims_survive_inventory_changes() -> None:
    view = PlacementView([H1, H2]).claim(REQUEST, "h1")
    view = view.with_host(Host("h3", "r3", "az1", 4, 8192, 100))
    assert view.usage_of("h1") == Usage(1, 1024, 10)


def test_building_from_an_existing_ledger_accounts_for_its_claims() -> None:
    ledger = Claims().add(Claim("x", "h1", 16, 0, 0))
    assert chosen(PlacementView([H1, H2], claims=ledger)) == "h2"
    assert chosen(PlacementView([H1], claims=ledger)) is None


def test_deleting_an_instance_frees_its_host_for_the_next_request() -> None:
    view = PlacementView([H1]).add_claim(Claim("x", "h1", 16, 0, 0))
    assert chosen(view) is None
    assert chosen(view.release("x")) == "h1"


def test_server_groups_can_be_added_updated_and_removed() -> None:
    view = PlacementView([H1, H2]).claim(PlacementRequest("a", "t1", 1, 1, 1), "h1")
    anti = ServerGroup("g", "anti-affinity", "host", frozenset({"a", "i1"}))
    grouped = PlacementRequest("i1", "t1", 1, 1024, 10, server_group_id="g")
    assert chosen(view.with_server_group(anti), grouped) == "h2"
    view = view.with_server_group(anti).without_server_group("g")
    assert chosen(view, grouped) is None


def test_hosts_and_requests_refuse_negative_amounts() -> None:
    with pytest.raises(ValueError, match="host h1: vcpus must not be negative"):
        Host("h1", "r1", "az1", -1, 8192, 100)
    with pytest.raises(ValueError, match="instance i1: ram_mb must not be negative"):
        PlacementRequest("i1", "t1", 1, -1, 10)
