"""Security groups changed on live ports: a real agent, real Kafka, real nftables.

One host namespace runs the agent (`ip netns exec`); two guest namespaces hold the guest ends
of their ports' veths: a client and a server listening on TCP 80. The test writes the
gateway's and the controller's events itself and waits, from each change, until a new
connection behaves as the log says (what a guest would notice), printing how long it took.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from tests.support.agents import AgentWorld, bound, registered
from tests.support.netns import KafkaRelay, namespaces, plug_guest, sh

from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    PortSecurityGroupsChanged,
    SecurityGroupCreated,
    SecurityGroupRule,
    SecurityGroupRuleAdded,
    SecurityGroupRuleDeleted,
)
from virga_network.agent.core import names

pytestmark = pytest.mark.kafka

PREFIX = "vs8"
HOST = "h1"
TENANT = "tenant-s"
NET = str(uuid.uuid4())
WEB, OPEN = str(uuid.uuid4()), str(uuid.uuid4())
EGRESS = SecurityGroupRule(direction="egress", id="egress")
HTTP = SecurityGroupRule(
    direction="ingress", protocol="tcp", port_min=80, port_max=80, remote_cidr="0.0.0.0/0",
    id=str(uuid.uuid4()),
)  # fmt: skip
CHANGE_SECONDS = 10.0
"""How soon a change must show on a live port ("within seconds")."""


@dataclass(frozen=True)
class Guest:
    name: str
    ip: str
    mac: str
    groups: tuple[str, ...]
    port_id: str

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


CLIENT = Guest("c", "10.0.8.11", "02:00:0a:00:08:0b", (OPEN,), str(uuid.uuid4()))
SERVER = Guest("s", "10.0.8.12", "02:00:0a:00:08:0c", (WEB,), str(uuid.uuid4()))


@dataclass
class World:
    agents: AgentWorld
    ns: dict[str, str]


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:5]
    ns = {HOST: f"{PREFIX}{run}h1", "c": f"{PREFIX}{run}gc", "s": f"{PREFIX}{run}gs"}
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    tmp = tmp_path_factory.mktemp("groups")
    with namespaces(list(ns.values())), KafkaRelay(port, [ns[HOST]]):
        agents = AgentWorld(kafka_bootstrap, {HOST: ns[HOST]}, {HOST: "192.0.2.1"}, PREFIX, tmp)
        try:
            agents.start_agent(HOST)
            agents.wait_for("the agent to register", registered({HOST}))
            agents.write(
                "api",
                # The server's group lets nothing in yet; the client's lets TCP 80 in.
                (SecurityGroupCreated(name="web", rules=(EGRESS,)), WEB, TENANT),
                (SecurityGroupCreated(name="open", rules=(EGRESS, HTTP)), OPEN, TENANT),
            )
            agents.write(
                "network",
                (NetworkCreated(name="s", cidr="10.0.8.0/24", vni=3008, gateway_ip="10.0.8.1",
                                allocation_pools=()), NET, TENANT),
                *(item for g in (CLIENT, SERVER) for item in (
                    (PortAllocated(network_id=NET, mac=g.mac, ips=(g.ip,),
                                   security_groups=g.groups), g.port_id, TENANT),
                    (PortHostAssigned(host=HOST), g.port_id, TENANT),
                )),
            )  # fmt: skip
            agents.wait_for(
                "both ports bound",
                lambda es: all(bound(es, g.port_id, HOST) for g in (CLIENT, SERVER)),
            )
            for g in (CLIENT, SERVER):
                plug_guest(ns[HOST], names.veth_peer(g.tap), ns[g.name], g.mac, [g.ip])
            yield World(agents, ns)
        finally:
            agents.stop_all()


@pytest.fixture(scope="module")
def server(world: World) -> Iterator[None]:
    """The server guest listening on TCP 80 (and 81, which no rule ever opens)."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", world.ns["s"], sys.executable, "-c",
         "import socket,time\n"
         "ls=[socket.create_server(('0.0.0.0',p)) for p in (80,81)]\n"
         "print('up',flush=True); time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "up"
        yield
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()


def tcp_open(world: World, guest: str, ip: str, port: int) -> bool:
    """Whether a new connection from `guest` to ip:port is accepted (dropped SYNs time out)."""
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(0.5)\n"
        f"sys.exit(s.connect_ex(({ip!r},{port})))\n"
    )
    return sh(sys.executable, "-c", script, netns=world.ns[guest], check=False).returncode == 0


def becomes(world: World, guest: str, ip: str, port: int, wanted: bool) -> float:
    """Seconds until a new connection's fate is `wanted`; fails after CHANGE_SECONDS."""
    start = time.monotonic()
    while tcp_open(world, guest, ip, port) != wanted:
        elapsed = time.monotonic() - start
        if elapsed > CHANGE_SECONDS:
            log = world.agents.log(HOST)
            pytest.fail(
                f"{ip}:{port} not {'open' if wanted else 'closed'} after {elapsed:.1f}s {log}"
            )
    return time.monotonic() - start


def test_a_rule_added_lets_traffic_in_and_its_deletion_drops_it_again(
    world: World, server: None
) -> None:
    assert not tcp_open(world, "c", SERVER.ip, 80)  # web lets nothing in
    world.agents.write("api", (SecurityGroupRuleAdded(rule=HTTP), WEB, TENANT))
    opened = becomes(world, "c", SERVER.ip, 80, True)
    assert not tcp_open(world, "c", SERVER.ip, 81)  # only what the rule says
    world.agents.write("api", (SecurityGroupRuleDeleted(rule_id=HTTP.id), WEB, TENANT))
    closed = becomes(world, "c", SERVER.ip, 80, False)
    print(f"rule added -> open in {opened:.2f}s; rule deleted -> closed in {closed:.2f}s")


def test_a_ports_new_groups_apply_at_once(world: World, server: None) -> None:
    assert not tcp_open(world, "c", SERVER.ip, 80)
    change = PortSecurityGroupsChanged(security_groups=(OPEN,))
    world.agents.write("api", (change, SERVER.port_id, TENANT))
    opened = becomes(world, "c", SERVER.ip, 80, True)
    back = PortSecurityGroupsChanged(security_groups=(WEB,))
    world.agents.write("api", (back, SERVER.port_id, TENANT))
    closed = becomes(world, "c", SERVER.ip, 80, False)
    print(
        f"port's groups changed -> open in {opened:.2f}s; changed back -> closed in {closed:.2f}s"
    )
