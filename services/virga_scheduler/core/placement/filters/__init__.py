"""Host filters: each is a pure predicate that refuses a host for one reason, in its own module.

A filter is a function ``(host, request, view) -> Rejection | None``: ``None`` lets the host
through, a ``Rejection`` says in plain words why not. Filters read the view, never change it,
and must be cheap: the scheduler calls them on the best-ranked hosts until one passes.
"""

from collections.abc import Callable

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

HostFilter = Callable[[Host, PlacementRequest, PlacementView], Rejection | None]
"""The shape every filter has; ``NAME`` in its module is the name its rejections carry."""
