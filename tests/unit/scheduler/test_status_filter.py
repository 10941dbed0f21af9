"""The status filter keeps new instances off hosts that are down or disabled by an admin."""

from __future__ import annotations

from virga_scheduler.core.placement import Host, PlacementRequest, PlacementView
from virga_scheduler.core.placement.filters.status import status
from virga_scheduler.core.placement.model import HostState

REQUEST = PlacementRequest("i1", "t1", vcpus=1, ram_mb=512, disk_gb=10)


def make_host(state: HostState = "up", *, enabled: bool = True) -> Host:
    return Host("h3", "r1", "az1", vcpus=8, ram_mb=16384, disk_gb=200, state=state, enabled=enabled)


def check(host: Host) -> str | None:
    rejection = status(host, REQUEST, PlacementView([host]))
    return None if rejection is None else rejection.reason


def test_an_up_and_enabled_host_passes() -> None:
    assert check(make_host()) is None


def test_a_down_host_is_refused() -> None:
    assert check(make_host("down")) == "host h3 is down"


def test_a_disabled_host_is_refused_with_the_admin_named_as_the_cause() -> None:
    assert check(make_host(enabled=False)) == "host h3 is disabled by an administrator"


def test_down_wins_over_disabled_because_that_is_what_an_operator_must_fix_first() -> None:
    assert check(make_host("down", enabled=False)) == "host h3 is down"
