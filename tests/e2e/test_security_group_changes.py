"""Security groups changed through the API reach live ports: a whole stack with a network
agent, two ports of a tenant bound on its host as veths whose other ends are plugged into
namespaces the test makes, a server listening on TCP 80 behind one of them.

A rule added to the server's group lets the client's new connections in within seconds, its
deletion drops them again; giving the server's port another group (`PUT /v1/ports/{id}`) does
the same. Deleting everything leaves no interface behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from tests.support.api import Api
from tests.support.api import until as until_within
from tests.support.netns import links, namespaces, plug_guest, sh, unique
from tests.support.stack import HostSpec, Stack

from virga_network.agent.core import names

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.timeout(300)]

until = functools.partial(until_within, seconds=60, every=0.2)
"""This module's wait: at most 60 s, polled every 0.2 s."""

HOST = "sg-host"
PREFIX = "vsg"
"""The network agent names every bridge, VXLAN and tap of this test with it."""
HTTP = {"direction": "ingress", "protocol": "tcp", "port_min": 80, "remote_cidr": "0.0.0.0/0"}
CHANGE_SECONDS = 10.0


@pytest.fixture(scope="module")
def stack(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("groups"),
        (HostSpec(HOST, "rack-1"),),
        network_agent_prefix=PREFIX,
    )
    try:
        with stack.running():
            yield stack
    finally:
        for name in virga_links():  # a failed test leaves no interface behind
            sh("ip", "link", "del", name, check=False)


def virga_links() -> set[str]:
    return {name for name in links("") if name.startswith(PREFIX)}


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[tuple[Api, Api, str]]:
    """(admin, tenant, tenant id): the admin makes the tenant's ports on the host."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        tenant_id, token = await admin.create_tenant(f"sg-{uuid.uuid4().hex[:6]}")
        yield admin, admin.as_token(token), tenant_id


@contextlib.contextmanager
def listening(netns: str) -> Iterator[None]:
    """A server on TCP 80 in `netns`, up when this enters."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c",
         "import socket,time\n"
         "s=socket.create_server(('0.0.0.0',80))\n"
         "print('up',flush=True); time.sleep(300)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "up"
        yield
    finally:
        server.kill()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()


def tcp_open(client_ns: str, ip: str, port: int) -> bool:
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(0.5)\n"
        f"sys.exit(s.connect_ex(({ip!r},{port})))\n"
    )
    return sh(sys.executable, "-c", script, netns=client_ns, check=False).returncode == 0


async def becomes(client_ns: str, ip: str, wanted: bool) -> float:
    """Seconds until a new connection to ip:80 is accepted (`wanted`) or dropped."""
    start = time.monotonic()
    while await asyncio.to_thread(tcp_open, client_ns, ip, 80) != wanted:
        assert time.monotonic() - start < CHANGE_SECONDS, f"{ip}:80 still not {wanted}"
    return time.monotonic() - start


async def test_rules_and_a_ports_groups_changed_through_the_api_apply_to_live_ports(
    clients: tuple[Api, Api, str],
) -> None:
    admin, tenant, tenant_id = clients
    network = await tenant.call("POST", "/v1/networks", {"name": "sg", "cidr": "10.78.0.0/24"})
    net_path = f"/v1/networks/{network['id']}"
    await until(tenant, net_path, lambda v: v["status"] == "ACTIVE")
    web = await tenant.call("POST", "/v1/security-groups", {"name": "web"})
    opened = await tenant.call("POST", "/v1/security-groups", {"name": "open", "rules": [HTTP]})
    ports = {}
    for name, groups in (("client", []), ("server", [web["id"]])):
        body = {"network_id": network["id"], "host": HOST, "security_groups": groups,
                "tenant_id": tenant_id}  # fmt: skip
        made = await admin.call("POST", "/v1/ports", body)
        path = f"/v1/ports/{made['id']}"
        ports[name] = await until(tenant, path, lambda v: v["status"] == "ACTIVE")
    server_ip = ports["server"]["ips"][0]
    timings: dict[str, float] = {}
    with namespaces([unique(PREFIX), unique(PREFIX)]) as [client_ns, server_ns]:
        for name, netns in (("client", client_ns), ("server", server_ns)):
            peer = names.veth_peer(names.tap_name(ports[name]["id"], PREFIX))
            plug_guest("", peer, netns, ports[name]["mac"], ports[name]["ips"])
        with listening(server_ns):
            assert not await asyncio.to_thread(tcp_open, client_ns, server_ip, 80)  # web: no in
            rules = f"/v1/security-groups/{web['id']}/rules"
            rule = await tenant.call("POST", rules, HTTP)
            timings["rule added"] = await becomes(client_ns, server_ip, True)
            await tenant.call("DELETE", f"{rules}/{rule['id']}", expect=(204,))
            timings["rule deleted"] = await becomes(client_ns, server_ip, False)

            server_path = f"/v1/ports/{ports['server']['id']}"
            await tenant.call("PUT", server_path, {"security_groups": [opened["id"]]})
            timings["port given open"] = await becomes(client_ns, server_ip, True)
            await tenant.call("PUT", server_path, {"security_groups": [web["id"]]})
            timings["port given web"] = await becomes(client_ns, server_ip, False)
    print(", ".join(f"{what}: {seconds:.2f}s" for what, seconds in timings.items()))

    for port in ports.values():
        await tenant.call("DELETE", f"/v1/ports/{port['id']}")
        await until(tenant, f"/v1/ports/{port['id']}", lambda v: v is None)
    for group in (web, opened):
        await tenant.call("DELETE", f"/v1/security-groups/{group['id']}", expect=(204,))
    await tenant.call("DELETE", net_path)
    await until(tenant, net_path, lambda v: v is None)
    deadline = time.monotonic() + 30
    while virga_links():
        assert time.monotonic() < deadline, f"left behind: {virga_links()}"
        await asyncio.sleep(0.2)
