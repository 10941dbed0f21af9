"""An IPv6 edge's services: router advertisements and DHCPv6 (`core.dhcpv6`), over the
sockets `netlink_edge` opened in its namespace. Used by `edge.EdgeServer`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from typing import cast

import structlog

from virga_network.agent.core import dhcpv6
from virga_network.agent.core.edge import EdgeSettings, dhcp_lease
from virga_network.agent.core.model import NetworkAgentState

log = structlog.get_logger(__name__)
ADVERTISE_SECONDS = 30.0
"""Unsolicited advertisements' period (a guest that solicits is answered at once)."""


class Dhcp6(asyncio.DatagramProtocol):
    """DHCPv6 for one network: the client is its link-local source address's MAC."""

    def __init__(
        self,
        network_id: str,
        state: Callable[[], NetworkAgentState],
        settings: EdgeSettings,
    ) -> None:
        self._network_id, self._state, self._settings = network_id, state, settings
        self._duid = dhcpv6.server_duid(network_id)
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        log.warning("dhcp6_send_failed", network_id=self._network_id, reason=str(exc))

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        message = dhcpv6.parse6(data)
        mac = dhcpv6.mac_of_link_local(str(addr[0]))
        if message is None or mac is None or self.transport is None:
            return
        lease = dhcp_lease(self._state(), self._network_id, mac, self._settings)
        reply = None if lease is None else dhcpv6.answer6(message, lease.ip, self._duid)
        log.info("dhcp6", network_id=self._network_id, mac=mac, kind=message.kind,
                 answered=reply is not None)  # fmt: skip
        if reply is not None:
            self.transport.sendto(reply, (str(addr[0]), dhcpv6.CLIENT_PORT6, 0, addr[3]))


class RouterAdvertiser:
    """Advertises the network's prefix (on-link), the M flag (unless the network has no
    DHCP) and the MTU: periodically and in answer to each router solicitation. While a
    router's leg is on the network here (`router`: its link-local address), the
    advertisement is sent in its name with a router lifetime, so guests route through it;
    when it goes, one with lifetime 0 in its name withdraws it at once."""

    def __init__(
        self,
        sock: socket.socket,
        ifindex: int,
        cidr: str,
        mtu: int,
        *,
        managed: bool = True,
        router: str | None = None,
    ) -> None:
        self._sock, self._ifindex = sock, ifindex
        self._advert = dhcpv6.router_advert(cidr, mtu, managed=managed)
        self._routed = dhcpv6.router_advert(
            cidr, mtu, managed=managed, router_lifetime=dhcpv6.ROUTER_LIFETIME
        )
        self.router = router
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(self._sock.fileno(), self._on_readable)
        self._task = loop.create_task(self._periodically())

    def set_router(self, router: str | None) -> None:
        """The router whose leg is here now (None: none); guests hear of a change at once."""
        if router == self.router:
            return
        if self.router is not None:
            self._send_as(self._advert, self.router)  # withdrawn: lifetime 0, in its name
        self.router = router
        self._send()

    def _send(self) -> None:
        if self.router is None:
            self._send_as(self._advert, None)
        else:
            self._send_as(self._routed, self.router)

    def _send_as(self, advert: bytes, source: str | None) -> None:
        """Send `advert` to all nodes, from `source` (the router's link-local address; the
        socket may: IPV6_FREEBIND) or else from the edge's own address."""
        ancillary = []
        if source is not None:
            info = socket.inet_pton(socket.AF_INET6, source) + struct.pack("@I", self._ifindex)
            ancillary.append((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info))
        with contextlib.suppress(OSError):  # a full queue: the next one goes out
            self._sock.sendmsg([advert], ancillary, 0, ("ff02::1", 0, 0, self._ifindex))

    def _on_readable(self) -> None:
        with contextlib.suppress(OSError):
            data = self._sock.recv(2048)
            if data and data[0] == dhcpv6.ROUTER_SOLICIT:
                self._send()

    async def _periodically(self) -> None:
        while True:
            self._send()
            await asyncio.sleep(ADVERTISE_SECONDS)

    async def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self._sock.fileno())
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sock.close()
