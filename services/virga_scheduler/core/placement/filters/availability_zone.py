"""Availability-zone filter: an instance asked for a zone lands only in that zone."""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "availability_zone"


def availability_zone(
    host: Host, request: PlacementRequest, view: PlacementView
) -> Rejection | None:
    wanted = request.availability_zone
    if wanted is None or host.zone == wanted:
        return None
    return Rejection(
        NAME,
        host.name,
        f"outside availability zone {wanted}",
        f"host {host.name} is in availability zone {host.zone}, the request asks for {wanted}",
    )
