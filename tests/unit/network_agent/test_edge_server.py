"""The edge server over loopback sockets: which network a request came in on, and sockets
that outlive changes of an edge's neighbours."""

from __future__ import annotations

import socket

import aiohttp

from virga_network.agent.core.edge import EdgeSettings
from virga_network.agent.core.model import (
    InstanceRecord,
    NetworkAgentState,
    NetworkRecord,
    PortRecord,
)
from virga_network.agent.core.plumbing import EdgePlumbing
from virga_network.agent.drivers.base import EdgeSockets
from virga_network.agent.edge import EdgeServer


def _state() -> NetworkAgentState:
    state = NetworkAgentState("h1")
    for net, tenant in (("n-a", "t-a"), ("n-b", "t-b")):
        state.networks[net] = NetworkRecord(net, tenant, 1, "127.0.0.0/8", "127.0.0.2")
        state.instances[f"i-{tenant}"] = InstanceRecord(f"i-{tenant}", tenant, f"vm-{tenant}")
        state.ports[f"p-{tenant}"] = PortRecord(
            f"p-{tenant}", tenant, net, "02:00:00:00:00:01", ("127.0.0.1",),
            instance_id=f"i-{tenant}", host="h1",
        )  # fmt: skip
    return state


async def test_each_edge_answers_for_its_own_network_and_keeps_its_sockets() -> None:
    opened: dict[str, int] = {}

    async def open_sockets(edge: EdgePlumbing) -> EdgeSockets:
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        tcp.setblocking(False)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        udp.setblocking(False)
        opened[edge.namespace] = tcp.getsockname()[1]
        return EdgeSockets(dhcp=udp, http=tcp)

    state = _state()
    server = EdgeServer(lambda: state, EdgeSettings(), open_sockets)
    edge_a = EdgePlumbing("ns-a", "vgea", "127.0.0.0/8")
    edge_b = EdgePlumbing("ns-b", "vgeb", "127.0.0.0/8")
    try:
        assert await server.serve([("n-a", edge_a), ("n-b", edge_b)])
        async with aiohttp.ClientSession() as session:
            for namespace, instance in (("ns-a", "i-t-a"), ("ns-b", "i-t-b")):
                url = f"http://127.0.0.1:{opened[namespace]}/latest/meta-data/instance-id"
                async with session.get(url) as response:
                    assert (response.status, await response.text()) == (200, instance)
            ports = dict(opened)
            # A new neighbour on n-a: the same sockets go on serving.
            moved = EdgePlumbing("ns-a", "vgea", "127.0.0.0/8", (("127.0.0.9", "m"),))
            assert await server.serve([("n-a", moved), ("n-b", edge_b)])
            assert opened == ports
            del state.ports["p-t-a"]  # the port left: its guest reads nothing more
            url = f"http://127.0.0.1:{opened['ns-a']}/openstack/latest/meta_data.json"
            async with session.get(url) as response:
                assert response.status == 404
        assert await server.serve([])
    finally:
        await server.close()
