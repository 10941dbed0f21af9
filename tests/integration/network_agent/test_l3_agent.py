"""Routers and floating IPs through a real agent process: the agent runs in a host namespace
(`ip netns exec`), reads the controller's events from Kafka and plumbs them; an "internet"
namespace on the host's external bridge reaches a guest by its floating IP, as soon as the
agent has confirmed the association (FloatingIpAssociated). A restart converges on the log
without confirming again: what was removed while the agent was down is gone after it starts,
and reported gone (FloatingIpUnplumbed).
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.agents import AgentWorld, bound, registered
from tests.support.l3 import connects, eventually, listener
from tests.support.netns import KafkaRelay, namespaces, pings, plug_guest, sh

from virga_events import Envelope
from virga_events.catalog.l3 import (
    ExternalNetworkCreated,
    FloatingIpAllocated,
    FloatingIpAssociated,
    FloatingIpAssociationAccepted,
    FloatingIpDissociated,
    FloatingIpUnplumbed,
    RouterCreated,
    RouterInterfaceAdded,
    RouterInterfaceRemoved,
)
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    SecurityGroupCreated,
    SecurityGroupRule,
)
from virga_network.agent.core import names

pytestmark = pytest.mark.kafka

PREFIX = "vn3"
HOST, VTEP = "h1", "192.0.2.1"
NET, EXT, ROUTER, FIP, PORT, TENANT = (
    str(uuid.uuid4()), "ext-3", "router-3", "fip-3", "port-3", "tenant-a",
)  # fmt: skip
FLOATING, GATEWAY = "203.0.113.102", "203.0.113.1"
RULES = (
    SecurityGroupRule(direction="egress", ethertype="IPv4"),
    SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="icmp"),
    SecurityGroupRule(direction="ingress", ethertype="IPv4", protocol="tcp", port_min=80),
)
MAC, IP = "02:00:0a:00:03:0b", "10.0.0.11"


def reports(envelopes: list[Envelope]) -> list[tuple[str, str, str, bool]]:
    """The agent's reports on the floating IP, in log order: (type, port, host, whether it
    names an acceptance of the log)."""
    accepted = {
        e.event_id for e in envelopes if isinstance(e.payload, FloatingIpAssociationAccepted)
    }
    kinds = FloatingIpAssociated | FloatingIpUnplumbed
    return [
        (e.type, e.payload.port_id, e.payload.host, e.payload.acceptance in accepted)
        for e in envelopes
        if e.aggregate_id == FIP and isinstance(e.payload, kinds)
    ]


def _remove_router_namespaces(prefix: str) -> None:
    """What an agent run with `ip netns exec` left here: files without a namespace mounted."""
    netns_dir = Path("/run/netns")
    for path in netns_dir.glob(f"{prefix}r*-{HOST}") if netns_dir.exists() else ():
        subprocess.run(["umount", str(path)], capture_output=True, check=False)
        path.unlink(missing_ok=True)


@pytest.fixture
def world(kafka_bootstrap: str, tmp_path: Path) -> Iterator[tuple[AgentWorld, dict[str, str]]]:
    run = uuid.uuid4().hex[:5]
    ns = {"host": f"{PREFIX}{run}h", "internet": f"{PREFIX}{run}i", "guest": f"{PREFIX}{run}g"}
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    with namespaces(list(ns.values())), KafkaRelay(port, [ns["host"]]):
        host = ns["host"]
        sh("ip", "link", "add", "vn3under", "type", "veth", "peer", "vn3under1", netns=host)
        sh("ip", "addr", "add", f"{VTEP}/24", "dev", "vn3under", netns=host)
        sh("ip", "link", "set", "vn3under", "up", netns=host)
        sh("ip", "link", "add", "vn3brex", "type", "bridge", netns=host)
        sh("ip", "link", "set", "vn3brex", "up", netns=host)
        sh("ip", "link", "add", "vn3up", "type", "veth", "peer", "eth0", "netns", ns["internet"],
           netns=host)  # fmt: skip
        sh("ip", "link", "set", "vn3up", "master", "vn3brex", "up", netns=host)
        sh("ip", "addr", "add", f"{GATEWAY}/24", "dev", "eth0", netns=ns["internet"])
        sh("ip", "link", "set", "eth0", "up", netns=ns["internet"])
        agents = AgentWorld(kafka_bootstrap, {HOST: host}, {HOST: VTEP}, PREFIX, tmp_path)
        try:
            agents.start_agent(HOST)
            agents.wait_for("the agent to register", registered({HOST}))
            yield agents, ns
        finally:
            agents.stop_all()
            _remove_router_namespaces(PREFIX)


def test_the_agent_plumbs_a_floating_ip_and_a_restart_removes_what_the_log_dropped(
    world: tuple[AgentWorld, dict[str, str]],
) -> None:
    agents, ns = world
    agents.write("api", (SecurityGroupCreated(name="web", rules=RULES), "web", TENANT))
    agents.write(
        "network",
        (ExternalNetworkCreated(name="public", cidr="203.0.113.0/24", gateway_ip=GATEWAY,
                                allocation_pools=(), host_interface="vn3brex"), EXT, None),
        (NetworkCreated(name="a", cidr="10.0.0.0/24", vni=3201, gateway_ip="10.0.0.1",
                        allocation_pools=()), NET, TENANT),
        (PortAllocated(network_id=NET, mac=MAC, ips=(IP,), security_groups=("web",)), PORT,
         TENANT),
        (PortHostAssigned(host=HOST), PORT, TENANT),
        (RouterCreated(name="r", external_network_id=EXT, external_ip="203.0.113.12"), ROUTER,
         TENANT),
        (RouterInterfaceAdded(network_id=NET, gateway_ip="10.0.0.1"), ROUTER, TENANT),
        (FloatingIpAllocated(external_network_id=EXT, ip=FLOATING), FIP, TENANT),
    )  # fmt: skip
    agents.wait_for("the port bound", lambda es: bound(es, PORT, HOST))
    tap = names.tap_name(PORT, PREFIX)
    plug_guest(ns["host"], names.veth_peer(tap), ns["guest"], MAC, (IP,))
    sh("ip", "route", "add", "default", "via", "10.0.0.1", netns=ns["guest"])
    server = listener(ns["guest"], 80)
    try:
        assert eventually(lambda: pings(ns["guest"], "10.0.0.1"), 20), agents.log(HOST)
        assert not connects(ns["internet"], FLOATING, 80, 0.5)
        associated = ("FloatingIpAssociated", PORT, HOST, True)
        agents.write(
            "network",
            (FloatingIpAssociationAccepted(port_id=PORT, network_id=NET, fixed_ip=IP, host=HOST),
             FIP, TENANT),
        )  # fmt: skip
        # Reported done only once the rules and the ARP answer are in place: at once, no retry.
        agents.wait_for("the association confirmed", lambda es: associated in reports(es))
        assert connects(ns["internet"], FLOATING, 80, 1.0)
        assert pings(ns["internet"], FLOATING)

        # Restarted with nothing changed: the floating IP still answers, confirmed once only
        # (a port bound after the restart shows the agent converged since).
        agents.stop_agent(HOST)
        agents.start_agent(HOST)
        assert eventually(lambda: connects(ns["internet"], FLOATING, 80, 0.5), 20)
        agents.write(
            "network",
            (PortAllocated(network_id=NET, mac="02:00:0a:00:03:0c", ips=("10.0.0.12",),
                           security_groups=("web",)), "port-3b", TENANT),
            (PortHostAssigned(host=HOST), "port-3b", TENANT),
        )  # fmt: skip
        agents.wait_for("the second port bound", lambda es: bound(es, "port-3b", HOST))
        assert reports(agents.events()) == [associated]

        # Dissociated and detached while the agent is down: gone once it is back.
        agents.stop_agent(HOST)
        agents.write(
            "network",
            (FloatingIpDissociated(port_id=PORT), FIP, TENANT),
            (RouterInterfaceRemoved(network_id=NET), ROUTER, TENANT),
        )
        agents.start_agent(HOST)
        unplumbed = ("FloatingIpUnplumbed", PORT, HOST, True)
        agents.wait_for("the floating IP reported gone", lambda es: unplumbed in reports(es))
        assert not connects(ns["internet"], FLOATING, 80, 0.5)
        assert reports(agents.events()) == [associated, unplumbed]
        assert eventually(lambda: not pings(ns["guest"], "10.0.0.1", wait=0.5), 20)
        left = {n for n in sh("ip", "-o", "link", "show", netns=ns["host"]).stdout.split()
                if n.startswith((f"{PREFIX}i", f"{PREFIX}g"))}  # fmt: skip
        assert left == set()
    finally:
        server.close()
