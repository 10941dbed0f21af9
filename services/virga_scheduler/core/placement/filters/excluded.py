"""Excluded filter: a reschedule never sends an instance back to a host that already failed it."""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "excluded"


def excluded(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    # Whatever broke the boot (bad image cache, full local disk, libvirt error) is likely still
    # broken there, and a bounded number of attempts must not be spent on the same host.
    if host.name in request.excluded_hosts:
        return Rejection(
            NAME,
            host.name,
            "that already failed this instance",
            f"host {host.name} already failed to boot instance {request.instance_id}",
        )
    return None
