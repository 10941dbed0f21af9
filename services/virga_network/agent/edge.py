"""The edge services of one host: DHCP and the metadata service on each network's edge
(router advertisements and DHCPv6 on an IPv6 network's: `edge_ipv6`).

Each edge (`core.edge`) gets an HTTP listener (169.254.169.254:80) and a DHCP socket (UDP
67), opened inside its namespace, so the network a request arrives on is the socket's, never
something the guest says; the guest itself is its source address (anti-spoofing ties it to
its port). Answers come from the agent's own fold of the log, read at request time, so the
edge keeps answering while the central services are down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast

import structlog
from aiohttp import web

from virga_guestdata.metadata import document
from virga_network.agent.core import dhcp
from virga_network.agent.core.edge import EdgeSettings, dhcp_lease, guest_facts
from virga_network.agent.core.model import NetworkAgentState
from virga_network.agent.core.plumbing import EdgePlumbing
from virga_network.agent.drivers.base import DriverError, EdgeSockets
from virga_network.agent.edge_ipv6 import Dhcp6, RouterAdvertiser

log = structlog.get_logger(__name__)
SocketOpener = Callable[[EdgePlumbing], Awaitable[EdgeSockets]]
"""The edge's sockets, opened in its namespace (`netlink_edge.edge_sockets`)."""


class _Dhcp(asyncio.DatagramProtocol):
    def __init__(self, server: EdgeServer, network_id: str) -> None:
        self._server, self._network_id = server, network_id
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def error_received(self, exc: Exception) -> None:
        log.warning("dhcp_send_failed", network_id=self._network_id, reason=str(exc))

    def datagram_received(self, data: bytes, addr: tuple[str | int, int]) -> None:
        message = dhcp.parse(data)
        if message is None or self.transport is None:
            return
        state, settings = self._server.state(), self._server.settings
        lease = dhcp_lease(state, self._network_id, message.mac, settings)
        reply = None if lease is None else dhcp.answer(message, lease)
        log.info(
            "dhcp",
            network_id=self._network_id,
            mac=message.mac,
            kind=message.kind,
            answered=reply is not None,
        )
        if reply is not None:
            self.transport.sendto(reply.packet, (reply.to, dhcp.CLIENT_PORT))


@dataclass
class _Served:
    namespace: str
    veth: str
    dhcp: asyncio.DatagramTransport
    runner: web.AppRunner | None = None
    """Metadata (IPv4 networks)."""
    advertiser: RouterAdvertiser | None = None
    """Router advertisements (IPv6 networks)."""


class EdgeServer:
    """Serves every edge the agent's plan wants (`serve`), from `state()`, its live fold."""

    def __init__(
        self,
        state: Callable[[], NetworkAgentState],
        settings: EdgeSettings,
        open_sockets: SocketOpener,
    ) -> None:
        self.state, self.settings = state, settings
        self._open = open_sockets
        self._served: dict[str, _Served] = {}
        """Network id -> what serves its edge."""

    async def serve(self, edges: list[tuple[str, EdgePlumbing]]) -> bool:
        """Serve exactly `edges` (network id, edge); False if one could not be (retried at
        the agent's next convergence)."""
        wanted = dict(edges)
        for network_id, served in list(self._served.items()):
            edge = wanted.get(network_id)
            if edge is None or (edge.namespace, edge.veth) != (served.namespace, served.veth):
                await self._stop(network_id)
            elif served.advertiser is not None:
                served.advertiser.set_router(edge.router)  # a router attached or gone
            # Other changes (its neighbours) are the driver's: the sockets stay open.
        ok = True
        for network_id, edge in sorted(wanted.items()):
            if network_id in self._served:
                continue
            try:
                self._served[network_id] = await self._start(network_id, edge)
                log.info("edge_serving", network_id=network_id, namespace=edge.namespace)
            except (DriverError, OSError) as exc:
                ok = False
                log.warning("edge_failed", network_id=network_id, reason=str(exc))
        return ok

    async def _start(self, network_id: str, edge: EdgePlumbing) -> _Served:
        sockets = await self._open(edge)
        loop = asyncio.get_running_loop()
        if sockets.icmp6 is not None:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: Dhcp6(network_id, self.state, self.settings), sock=sockets.dhcp
            )
            network = self.state().networks.get(network_id)
            advertiser = RouterAdvertiser(
                sockets.icmp6,
                sockets.ifindex,
                edge.cidr,
                self.settings.guest_mtu,
                managed=network is None or network.dhcp,
                router=edge.router,
            )
            advertiser.start()
            return _Served(edge.namespace, edge.veth, transport, advertiser=advertiser)
        assert sockets.http is not None
        app = web.Application()
        app.router.add_get("/{path:.*}", self._metadata_handler(network_id))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, sockets.http).start()
            transport, _ = await loop.create_datagram_endpoint(
                lambda: _Dhcp(self, network_id), sock=sockets.dhcp
            )
        except BaseException:
            await runner.cleanup()
            sockets.dhcp.close()
            raise
        return _Served(edge.namespace, edge.veth, transport, runner=runner)

    def _metadata_handler(
        self, network_id: str
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            caller = request.remote or ""
            facts = guest_facts(self.state(), network_id, caller, self.settings)
            body = None if facts is None else document(facts, request.path)
            log.info(
                "metadata",
                network_id=network_id,
                caller=caller,
                instance_id=None if facts is None else facts.instance_id,
                path=request.path,
                found=body is not None,
            )
            if body is None:
                return web.Response(status=404, text="not found\n")
            kind = "application/json" if request.path.endswith(".json") else "text/plain"
            return web.Response(body=body, content_type=kind)

        return handle

    async def _stop(self, network_id: str) -> None:
        served = self._served.pop(network_id)
        served.dhcp.close()
        if served.runner is not None:
            await served.runner.cleanup()
        if served.advertiser is not None:
            await served.advertiser.stop()
        log.info("edge_stopped", network_id=network_id)

    async def close(self) -> None:
        for network_id in list(self._served):
            await self._stop(network_id)
