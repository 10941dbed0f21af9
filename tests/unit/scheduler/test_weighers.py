"""Weighers decide among hosts that fit: spread by default, pack on request, ties by name."""

from __future__ import annotations

from virga_scheduler.core.placement import (
    Claim,
    Host,
    Placement,
    PlacementRequest,
    PlacementView,
    Policy,
    Weigher,
    select_host,
)

SPREAD = Policy()
PACK = Policy(weigher=Weigher.PACK)
REQUEST = PlacementRequest("new", "t1", vcpus=2, ram_mb=4096, disk_gb=20)


def host(name: str, vcpus: int = 8, ram_mb: int = 32768) -> Host:
    return Host(name, "r1", "az1", vcpus=vcpus, ram_mb=ram_mb, disk_gb=500)


def chosen(view: PlacementView, policy: Policy = SPREAD) -> str:
    result = select_host(REQUEST, view, policy)
    assert isinstance(result, Placement), result
    return result.host


def loaded(view: PlacementView, host: str, vcpus: int, ram_mb: int) -> PlacementView:
    return view.add_claim(Claim(f"on-{host}-{vcpus}-{ram_mb}", host, vcpus, ram_mb, 0))


def test_spread_is_the_default_and_prefers_the_emptiest_host() -> None:
    view = loaded(
        loaded(PlacementView([host("a"), host("b"), host("c")]), "a", 8, 8192), "c", 4, 4096
    )
    assert chosen(view) == "b"


def test_spread_prefers_the_larger_host_when_both_are_empty() -> None:
    assert chosen(PlacementView([host("small", 8, 16384), host("big", 32, 131072)])) == "big"


def test_pack_prefers_the_fullest_host_that_still_fits() -> None:
    view = loaded(
        loaded(PlacementView([host("a"), host("b"), host("c")]), "a", 8, 8192), "c", 4, 4096
    )
    assert chosen(view, PACK) == "a"
    # Full up to the last 2 GiB: a no longer fits, the next fullest does.
    assert chosen(loaded(view, "a", 0, 22528), PACK) == "c"


def test_a_host_is_as_free_as_its_scarcest_resource() -> None:
    # "a" has every vCPU idle but only 4 GiB of RAM left; "b" is short of neither. Summing
    # vCPU and RAM would rank "a" first, yet it is the fuller host.
    view = loaded(loaded(PlacementView([host("a"), host("b")]), "a", 0, 28672), "b", 26, 4096)
    assert chosen(view) == "b"
    assert chosen(view, PACK) == "a"


def test_equal_hosts_are_broken_by_name_under_both_weighers() -> None:
    view = PlacementView([host("h2"), host("h10"), host("h1")])
    assert chosen(view) == "h1"
    assert chosen(view, PACK) == "h1"
