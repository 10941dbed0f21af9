"""Server-group filter: keep a group's members together (affinity) or apart (anti-affinity).

The scope says what "together" means: the same host, or the same rack (one top-of-rack switch
and power feed, so rack anti-affinity survives losing either). Only members that already hold
a claim constrain the choice, so the first member of an affinity group may go anywhere.
"""

from ..model import Host, PlacementRequest, Rejection
from ..view import PlacementView

NAME = "server_group"


def server_group(host: Host, request: PlacementRequest, view: PlacementView) -> Rejection | None:
    group_id = request.server_group_id
    if group_id is None:
        return None
    group = view.server_group(group_id)
    if group is None:
        # Placing without the policy would silently break what the user asked for.
        return Rejection(
            NAME,
            host.name,
            f"refused because server group {group_id} does not exist",
            f"server group {group_id} does not exist",
        )
    placed = view.member_locations(group, excluding=request.instance_id)
    if not placed:
        return None
    by_rack = group.scope == "rack"
    where = host.rack if by_rack else host.name
    sharing = [m for m in placed if (m.rack if by_rack else m.host) == where]
    if group.policy == "anti-affinity":
        if not sharing:
            return None
        if by_rack:
            return Rejection(
                NAME,
                host.name,
                f"in a rack already running a member of anti-affinity group {group_id}",
                f"host {host.name} is in rack {host.rack}, which already runs instance"
                f" {sharing[0].instance_id} of anti-affinity group {group_id}",
            )
        return Rejection(
            NAME,
            host.name,
            f"already running a member of anti-affinity group {group_id}",
            f"host {host.name} already runs instance {sharing[0].instance_id}"
            f" of anti-affinity group {group_id}",
        )
    if sharing:
        return None
    # Affinity: all members should share one place; if an operator moved some apart, any of
    # their places still honours the group best.
    places = ", ".join(sorted({m.rack if by_rack else m.host for m in placed}))
    if by_rack:
        return Rejection(
            NAME,
            host.name,
            f"outside the rack of affinity group {group_id}",
            f"host {host.name} is in rack {host.rack}, affinity group {group_id} runs in {places}",
        )
    return Rejection(
        NAME,
        host.name,
        f"not running affinity group {group_id}",
        f"host {host.name} is not where affinity group {group_id} runs ({places})",
    )
