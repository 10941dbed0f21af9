"""Status filter: only hosts that are up and enabled by administrators take new instances."""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "status"


def status(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    if host.state != "up":
        # An agent that stopped reporting cannot boot anything; its claims stay held until
        # the instances on it are evacuated or deleted.
        return Rejection(NAME, host.name, "down", f"host {host.name} is down")
    if not host.enabled:
        return Rejection(
            NAME, host.name, "disabled", f"host {host.name} is disabled by an administrator"
        )
    return None
