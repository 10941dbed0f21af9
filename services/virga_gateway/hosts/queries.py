"""Reads of hosts (admins only: the routes say so)."""

from __future__ import annotations

from virga_gateway.hosts.views import HostList, host_view
from virga_gateway.state import GatewayState


def list_hosts(state: GatewayState) -> HostList:
    hosts = sorted((h for h in state.hosts.values() if h.registered), key=lambda h: h.name)
    return HostList(items=[host_view(state, h) for h in hosts])
