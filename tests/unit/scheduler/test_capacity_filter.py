"""The capacity filter refuses hosts without the request's vCPU, RAM or disk left to sell."""

from __future__ import annotations

from virga_scheduler.core.placement import (
    AllocationRatios,
    Claim,
    Host,
    PlacementRequest,
    PlacementView,
)
from virga_scheduler.core.placement.filters.capacity import capacity

# 4 physical vCPUs, 16 GiB RAM, 100 GB disk: 16 vCPUs to sell at the default ratio of 4.
HOST = Host("h1", "r1", "az1", vcpus=4, ram_mb=16384, disk_gb=100)


def view_with_usage(vcpus: int = 0, ram_mb: int = 0, disk_gb: int = 0) -> PlacementView:
    return PlacementView([HOST]).add_claim(Claim("running", "h1", vcpus, ram_mb, disk_gb))


def request(vcpus: int = 1, ram_mb: int = 512, disk_gb: int = 10) -> PlacementRequest:
    return PlacementRequest("i1", "t1", vcpus, ram_mb, disk_gb)


def reason(request: PlacementRequest, view: PlacementView) -> str | None:
    rejection = capacity(view.hosts["h1"], request, view)
    return None if rejection is None else rejection.reason


def test_vcpus_are_overcommitted_by_the_default_ratio_of_four() -> None:
    assert reason(request(vcpus=16), view_with_usage()) is None
    assert reason(request(vcpus=17), view_with_usage()) == (
        "host h1 needs 17 vCPU, 16 free of 16 (4 physical at ratio 4)"
    )


def test_claims_already_held_reduce_what_is_free() -> None:
    view = view_with_usage(vcpus=14)
    assert reason(request(vcpus=2), view) is None
    assert reason(request(vcpus=4), view) == (
        "host h1 needs 4 vCPU, 2 free of 16 (4 physical at ratio 4)"
    )


def test_ram_is_not_overcommitted_by_default() -> None:
    view = view_with_usage(ram_mb=16000)
    assert reason(request(ram_mb=384), view) is None
    assert reason(request(ram_mb=385), view) == (
        "host h1 needs 385 MB RAM, 384 free of 16384 (16384 physical at ratio 1)"
    )


def test_disk_is_checked_too() -> None:
    assert reason(request(disk_gb=101), view_with_usage()) == (
        "host h1 needs 101 GB disk, 100 free of 100 (100 physical at ratio 1)"
    )


def test_an_admin_override_on_the_host_replaces_the_global_ratios() -> None:
    view = view_with_usage(vcpus=14).with_ratio_override("h1", AllocationRatios(cpu=8.0))
    assert reason(request(vcpus=18), view) is None
    assert reason(request(vcpus=19), view) == (
        "host h1 needs 19 vCPU, 18 free of 32 (4 physical at ratio 8)"
    )


def test_clearing_the_override_falls_back_to_the_global_ratios() -> None:
    view = view_with_usage().with_ratio_override("h1", AllocationRatios(cpu=8.0))
    assert reason(request(vcpus=20), view.with_ratio_override("h1", None)) is not None


def test_global_ratios_apply_to_hosts_without_an_override() -> None:
    view = view_with_usage().with_ratios(AllocationRatios(cpu=2.0, ram=1.5, disk=1.0))
    assert reason(request(vcpus=8, ram_mb=24576), view) is None
    assert reason(request(vcpus=9), view) == (
        "host h1 needs 9 vCPU, 8 free of 8 (4 physical at ratio 2)"
    )


def test_fractional_limits_read_as_decimals_not_floats() -> None:
    view = view_with_usage().with_ratios(AllocationRatios(cpu=1.25))
    assert reason(request(vcpus=6), view) == (
        "host h1 needs 6 vCPU, 5 free of 5 (4 physical at ratio 1.25)"
    )
    view = view_with_usage().with_ratios(AllocationRatios(cpu=1.3))
    assert reason(request(vcpus=6), view) == (
        "host h1 needs 6 vCPU, 5.2 free of 5.2 (4 physical at ratio 1.3)"
    )


def test_the_first_shortfall_is_reported_and_grouped_by_what_was_asked() -> None:
    view = view_with_usage(vcpus=16, ram_mb=16384)
    rejection = capacity(HOST, request(vcpus=4, ram_mb=1024), view)
    assert rejection is not None
    assert rejection.kind == "without 4 vCPU free"
