"""Reads of hosts (admins only: the routes say so)."""

from __future__ import annotations

from virga_gateway.cursor import EPOCH, OrderKey, take_page
from virga_gateway.hosts.views import HostList, HostView, host_view
from virga_gateway.state import GatewayState


def list_hosts(state: GatewayState, *, limit: int, after: OrderKey | None = None) -> HostList:
    """One page of registered hosts by name (a key's time is EPOCH: hosts sort by name)."""

    def shown(key: OrderKey) -> HostView | None:
        host = state.hosts.get(key[1])
        return None if host is None or not host.registered else host_view(state, host)

    order = sorted((EPOCH, name) for name in state.hosts)
    items, next_cursor = take_page([order], after, limit, shown)
    return HostList(items=items, next=next_cursor)
