"""The scheduler's pure placement core: which host an instance goes to, and why not the others.

How a placement is decided, in order:

1. **Filters** (``filters/``, run in ``scheduler.FILTERS`` order: status, excluded,
   availability_zone, traits, server_group, capacity) each refuse a host for one reason; a
   host is reported under the first filter that refuses it.
2. **Weighers** (``weighers``) score the hosts: ``spread`` (default) prefers the most free,
   ``pack`` the least free that fits.
3. **Ranking** (``ranking``) keeps hosts in weigher order, so ``select_host`` walks them
   best-first and the first host every filter lets through is the placement; when none does,
   ``NoValidHost.reason`` counts the refusals per filter in one sentence.
4. **Claims** (``claims``): the service then takes the room with ``view.claim(request,
   host)``, the next view the next request is decided against, so no two take the same room.

How placement works, in the order to read the modules:

1. ``model``: the value types. A ``Host`` sells its physical vCPU/RAM/disk times its
   ``AllocationRatios``; a ``PlacementRequest`` asks for a flavor's worth of it, maybe in an
   availability zone, a ``ServerGroup``, with required traits, and never on hosts that already
   failed it. A ``Claim`` is what a placed instance holds.
2. ``claims``: the immutable ``Claims`` ledger, with usage per host kept summed.
3. ``inventory`` and ``view``: ``PlacementView``, the read model a decision uses: hosts and
   their limits (the inventory), usage (the ledger), server groups. Immutable;
   ``view.claim(request, host)`` returns the next view.
4. ``filters/``: one pure predicate per module, ``(host, request, view) -> Rejection | None``.
   A ``Rejection`` says in words why a host was refused.
5. ``weighers``: rank hosts that pass by free capacity, spread (default) or pack.
6. ``scheduler``: ``select_host(request, view, policy)`` returns a ``Placement`` or a
   ``NoValidHost`` whose ``reason`` is one sentence ("no host fits: 2 hosts down, ...").

Speed comes from ``ranking`` (hosts kept in weigher order as claims change) and ``persistent``
(immutable collections that copy a chunk per update, not the fleet); neither changes a decision.

The service decides one request at a time: ``select_host``, then ``view.claim`` on a
``Placement``. Deciding sequentially against the newest view is what rules out double booking.
"""

from .claims import Claims
from .inventory import HostLimits
from .model import (
    AllocationRatios,
    Claim,
    Host,
    MemberLocation,
    PlacementRequest,
    Rejection,
    ServerGroup,
    Usage,
)
from .scheduler import FILTERS, NoValidHost, Placement, Policy, explain, select_host
from .view import PlacementView
from .weighers import Weigher

__all__ = [
    "FILTERS",
    "AllocationRatios",
    "Claim",
    "Claims",
    "Host",
    "HostLimits",
    "MemberLocation",
    "NoValidHost",
    "Placement",
    "PlacementRequest",
    "PlacementView",
    "Policy",
    "Rejection",
    "ServerGroup",
    "Usage",
    "Weigher",
    "explain",
    "select_host",
]
