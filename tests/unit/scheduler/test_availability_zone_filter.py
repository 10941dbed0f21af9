"""The availability-zone filter keeps an instance in the zone its user asked for."""

from __future__ import annotations

from virga_scheduler.core.placement import Host, PlacementRequest, PlacementView
from virga_scheduler.core.placement.filters.availability_zone import availability_zone

HOST = Host("h1", "r1", "az2", vcpus=8, ram_mb=16384, disk_gb=200)
VIEW = PlacementView([HOST])


def request(zone: str | None) -> PlacementRequest:
    return PlacementRequest("i1", "t1", 1, 512, 10, availability_zone=zone)


def test_a_host_in_the_asked_zone_passes() -> None:
    assert availability_zone(HOST, request("az2"), VIEW) is None


def test_a_host_in_another_zone_is_refused_naming_both_zones() -> None:
    rejection = availability_zone(HOST, request("az1"), VIEW)
    assert rejection is not None
    assert rejection.reason == "host h1 is in availability zone az2, the request asks for az1"
    assert rejection.kind == "outside availability zone az1"


def test_no_zone_asked_means_any_zone() -> None:
    assert availability_zone(HOST, request(None), VIEW) is None
