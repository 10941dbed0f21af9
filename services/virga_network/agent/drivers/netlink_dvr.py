"""A router's permanent neighbours (`core.dvr`): the ports of its networks on other hosts,
on the leg of their network, so the router never asks across the tunnel.

Used by `netlink_router`: `lines` after the legs exist; `stale` from `ip -j neigh show nud
permanent` (taken before the batch), removing the permanent entries of the legs the log no
longer holds (a port gone, moved here). Other devices' entries (a redirect leg's SNAT port)
are left alone.
"""

from __future__ import annotations

import json

from virga_network.agent.core import names
from virga_network.agent.core.plumbing import RouterPlumbing


def _wanted(router: RouterPlumbing) -> set[tuple[str, str, str]]:
    return {
        (ip, mac, names.veth_peer(leg.veth))
        for leg in router.interfaces
        for ip, mac in leg.neighbours
    }


def lines(router: RouterPlumbing) -> list[str]:
    """The namespace's lines that make every wanted neighbour entry."""
    return [
        f"neigh replace {ip} lladdr {mac} dev {dev} nud permanent"
        for ip, mac, dev in sorted(_wanted(router))
    ]


def stale(listing: str, router: RouterPlumbing) -> list[str]:
    """The namespace's lines removing the legs' permanent entries not wanted."""
    legs = {names.veth_peer(leg.veth) for leg in router.interfaces}
    wanted = {(ip, dev) for ip, _, dev in _wanted(router)}
    # A flush, not a delete: the batch may have dropped it already (setting a leg's MAC
    # flushes its neighbours), and a flush of nothing is no failure.
    return [
        f"neigh flush to {entry['dst']} dev {entry['dev']} nud permanent"
        for entry in json.loads(listing or "[]")
        if entry.get("dev") in legs and (entry.get("dst"), entry.get("dev")) not in wanted
    ]
