"""The traits filter only lets through hosts that have every trait the request requires."""

from __future__ import annotations

from virga_scheduler.core.placement import Host, PlacementRequest, PlacementView
from virga_scheduler.core.placement.filters.traits import traits

HOST = Host("h1", "r1", "az1", 8, 16384, 200, traits=frozenset({"SSD", "HW_CPU_X86_AVX2"}))
VIEW = PlacementView([HOST])


def request(*required: str) -> PlacementRequest:
    return PlacementRequest("i1", "t1", 1, 512, 10, required_traits=frozenset(required))


def test_a_host_with_all_required_traits_passes() -> None:
    assert traits(HOST, request("SSD", "HW_CPU_X86_AVX2"), VIEW) is None


def test_no_required_traits_means_any_host() -> None:
    assert traits(HOST, request(), VIEW) is None


def test_a_missing_trait_is_named() -> None:
    rejection = traits(HOST, request("SSD", "CUSTOM_GPU"), VIEW)
    assert rejection is not None
    assert rejection.reason == "host h1 lacks trait CUSTOM_GPU"


def test_several_missing_traits_are_listed_in_a_stable_order() -> None:
    rejection = traits(HOST, request("CUSTOM_GPU", "CUSTOM_FPGA", "SSD"), VIEW)
    assert rejection is not None
    assert rejection.reason == "host h1 lacks traits CUSTOM_FPGA, CUSTOM_GPU"
