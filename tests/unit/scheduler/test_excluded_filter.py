"""The excluded filter never sends a rescheduled instance back to a host that failed it."""

from __future__ import annotations

from virga_scheduler.core.placement import Host, PlacementRequest, PlacementView
from virga_scheduler.core.placement.filters.excluded import excluded

HOST = Host("h2", "r1", "az1", vcpus=8, ram_mb=16384, disk_gb=200)
VIEW = PlacementView([HOST])


def test_a_host_that_failed_the_instance_is_refused() -> None:
    request = PlacementRequest("i1", "t1", 1, 512, 10, excluded_hosts=frozenset({"h2"}))
    rejection = excluded(HOST, request, VIEW)
    assert rejection is not None
    assert rejection.reason == "host h2 already failed to boot instance i1"


def test_other_hosts_are_not_affected() -> None:
    request = PlacementRequest("i1", "t1", 1, 512, 10, excluded_hosts=frozenset({"h9"}))
    assert excluded(HOST, request, VIEW) is None


def test_a_first_attempt_excludes_nothing() -> None:
    assert excluded(HOST, PlacementRequest("i1", "t1", 1, 512, 10), VIEW) is None
