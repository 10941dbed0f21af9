"""An external network reached through a plain interface, not a bridge: the router's
external leg is then a macvlan of it (the host's own traffic keeps the interface)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from tests.support.l3 import Log, eventually, listener, source_seen
from tests.support.netns import namespaces, pings, plug_guest, sh, unique

from virga_events.catalog.l3 import ExternalNetworkCreated, RouterCreated, RouterInterfaceAdded
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    SecurityGroupCreated,
    SecurityGroupRule,
)
from virga_network.agent.core import names
from virga_network.agent.core.plan import host_plan
from virga_network.agent.drivers.netlink import NetlinkDriver
from virga_network.agent.effects.converge import AgentEffects
from virga_network.agent.effects.intents import Converge

PREFIX = "vo3"
VTEP = "192.0.2.1"
HOST = unique("m")
NET = str(uuid.uuid4())
ROUTER_IP, GATEWAY = "203.0.113.13", "203.0.113.1"


@pytest.fixture
async def world() -> AsyncIterator[dict[str, str]]:
    ns = {"host": unique("vo3h"), "internet": unique("vo3i"), "guest": unique("vo3g")}
    with namespaces(list(ns.values())):
        host = ns["host"]
        sh("ip", "link", "add", "vo3under", "type", "veth", "peer", "vo3under1", netns=host)
        sh("ip", "addr", "add", f"{VTEP}/24", "dev", "vo3under", netns=host)
        sh("ip", "link", "set", "vo3under", "up", netns=host)
        # The host's uplink to the external network: a plain interface.
        sh("ip", "link", "add", "vo3ext", "type", "veth", "peer", "eth0", "netns",
           ns["internet"], netns=host)  # fmt: skip
        sh("ip", "link", "set", "vo3ext", "up", netns=host)
        sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", "eth0", netns=ns["internet"])
        sh("ip", "link", "set", "eth0", "up", netns=ns["internet"])
        driver = NetlinkDriver(prefix=PREFIX, tap_kind="veth", netns=host, host=HOST)
        log = Log(HOST)
        try:
            await driver.prepare()
            log.write(
                ExternalNetworkCreated(name="p", cidr="203.0.113.0/24", gateway_ip=GATEWAY,
                                       allocation_pools=(), host_interface="vo3ext"),
                "ext", None,
            )  # fmt: skip
            log.write(
                NetworkCreated(name="n", cidr="10.0.0.0/24", vni=3301, gateway_ip="10.0.0.1",
                               allocation_pools=()),
                NET, "t",
            )  # fmt: skip
            out = (SecurityGroupRule(direction="egress", ethertype="IPv4"),)
            log.write(SecurityGroupCreated(name="out", rules=out), "out", "t")
            allocated = PortAllocated(
                network_id=NET,
                mac="02:00:0a:00:04:0b",
                ips=("10.0.0.11",),
                security_groups=("out",),
            )
            log.write(allocated, "port-m", "t")
            log.write(PortHostAssigned(host=HOST), "port-m", "t")
            log.write(
                RouterCreated(name="r", external_network_id="ext", external_ip=ROUTER_IP), "r", "t"
            )
            log.write(RouterInterfaceAdded(network_id=NET, gateway_ip="10.0.0.1"), "r", "t")
            effects = AgentEffects(driver)
            await effects.converge(Converge(host_plan(log.state, VTEP, PREFIX)))
            tap = names.tap_name("port-m", PREFIX)
            plug_guest(host, names.veth_peer(tap), ns["guest"], "02:00:0a:00:04:0b",
                       ("10.0.0.11",))  # fmt: skip
            sh("ip", "route", "add", "default", "via", "10.0.0.1", netns=ns["guest"])
            yield ns
        finally:
            await driver.close()
            sh("ip", "netns", "del", names.router_namespace("r", HOST, PREFIX), check=False)


async def test_a_router_reaches_an_external_network_through_a_plain_interface(
    world: dict[str, str],
) -> None:
    router_ns = names.router_namespace("r", HOST, PREFIX)
    kind = sh("ip", "-d", "link", "show", netns=router_ns).stdout
    assert "macvlan mode bridge" in kind
    assert eventually(lambda: pings(world["internet"], ROUTER_IP))
    server = listener(world["internet"], 9000)
    try:
        assert source_seen(server, world["guest"], GATEWAY, 9000) == ROUTER_IP
    finally:
        server.close()
