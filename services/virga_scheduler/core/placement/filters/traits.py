"""Traits filter: a host must have every trait the request requires (GPU, CPU flags, SSD...)."""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "traits"


def traits(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    if request.required_traits <= host.traits:
        return None
    missing = request.required_traits - host.traits
    # Sorted so the same request always yields the same words, whatever the set order.
    names = ", ".join(sorted(missing))
    noun = "trait" if len(missing) == 1 else "traits"
    return Rejection(
        NAME, host.name, f"without {noun} {names}", f"host {host.name} lacks {noun} {names}"
    )
