"""Two hosts, real agents, real Kafka: guests in namespaces talk over VXLAN as the log says.

Hosts are network namespaces joined by a veth pair (their VTEPs); each runs its own agent
process (`ip netns exec`). Guests are namespaces holding the guest end of their port's veth.
The test writes the controller's and the gateway's events itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support import frames
from tests.support.kafka import produce_events, read_events
from tests.support.netns import KafkaRelay, links, namespaces, pings, plug_guest, sh

from virga_events import REGISTRY, Envelope, Event, new_event
from virga_events.catalog.network import (
    NetworkAgentRegistered,
    NetworkCreated,
    PortAllocated,
    PortBound,
    PortDeleted,
    PortHostAssigned,
    PortUnbound,
    SecurityGroupCreated,
    SecurityGroupRule,
    default_security_group_id,
)
from virga_network.agent.core import names
from virga_network.agent.core.nft_rules import link_local, table_name

pytestmark = pytest.mark.kafka

PREFIX = "vh4"
VTEPS = {"h1": "192.0.2.1", "h2": "192.0.2.2"}
FRAMES = str(Path(frames.__file__))


@dataclass(frozen=True)
class Guest:
    name: str
    tenant: str
    network: str
    host: str
    ip: str
    mac: str
    groups: tuple[str, ...]
    port_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


WEB, LOCKED = str(uuid.uuid4()), str(uuid.uuid4())
DEFAULT_A, DEFAULT_B = default_security_group_id("tenant-a"), default_security_group_id("tenant-b")
NET_A, NET_B, NET_C = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
GUESTS = {
    g.name: g
    for g in (
        Guest("a1", "tenant-a", NET_A, "h1", "10.0.0.11", "02:00:0a:00:00:0b", (DEFAULT_A,)),
        Guest("a2", "tenant-a", NET_A, "h2", "10.0.0.12", "02:00:0a:00:00:0c", (DEFAULT_A,)),
        Guest("a3", "tenant-a", NET_A, "h2", "10.0.0.13", "02:00:0a:00:00:0d", (WEB,)),
        Guest("a4", "tenant-a", NET_A, "h1", "10.0.0.14", "02:00:0a:00:00:0e", (DEFAULT_A,)),
        Guest("a5", "tenant-a", NET_A, "h1", "10.0.0.15", "02:00:0a:00:00:0f", (LOCKED,)),
        # Tenant B's network has the same CIDR; b1 even has a2's address.
        Guest("b1", "tenant-b", NET_B, "h2", "10.0.0.12", "02:00:0b:00:00:0c", (DEFAULT_B,)),
        Guest("b2", "tenant-b", NET_B, "h1", "10.0.0.20", "02:00:0b:00:00:14", (DEFAULT_B,)),
        Guest("c1", "tenant-a", NET_C, "h1", "fd00:c::11", "02:00:0c:00:00:11", (DEFAULT_A,)),
        Guest("c2", "tenant-a", NET_C, "h2", "fd00:c::12", "02:00:0c:00:00:12", (DEFAULT_A,)),
    )
}
WEB_RULES = (
    SecurityGroupRule(direction="ingress", protocol="tcp", port_min=8080, port_max=8080),
    SecurityGroupRule(direction="ingress", protocol="icmp"),
    SecurityGroupRule(direction="egress"),
)
LOCKED_RULES = (  # egress: ICMP to a3 only; no ingress at all
    SecurityGroupRule(direction="egress", protocol="icmp", remote_cidr="10.0.0.13/32"),
)


class World:
    """The hosts, guests and agents of this module, and the log they share."""

    def __init__(self, bootstrap: str, ns: dict[str, str], tmp: Path) -> None:
        self.bootstrap = bootstrap
        self.topic_ns = f"vh4{uuid.uuid4().hex[:8]}"
        self.ns = ns
        self.tmp = tmp
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    def start_agent(self, host: str) -> None:
        env = {
            **os.environ,
            "VIRGA_HOST": host,
            "VIRGA_VTEP_IP": VTEPS[host],
            "VIRGA_NETWORK_IFACE_PREFIX": PREFIX,
            "VIRGA_NETWORK_TAP_KIND": "veth",
            "VIRGA_NETWORK_SYNC_SECONDS": "0.1",
            "VIRGA_KAFKA_BOOTSTRAP": self.bootstrap,
            "VIRGA_NAMESPACE": self.topic_ns,
        }
        log = (self.tmp / f"agent-{host}.log").open("ab")
        with log:
            self.agents[host] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns[host], sys.executable, "-m", "virga_network.agent"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop_agent(self, host: str) -> None:
        process = self.agents.pop(host)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def topic(self, service: str) -> str:
        return f"{self.topic_ns}.{service}"

    def write(self, service: str, *events: tuple[Event, str, str | None]) -> None:
        producer = "gateway" if service == "api" else "network"
        envelopes = [
            new_event(payload, aggregate_id=key, tenant_id=tenant, producer=producer)
            for payload, key, tenant in events
        ]
        asyncio.run(produce_events(self.bootstrap, self.topic(service), envelopes))

    def events(self) -> list[Envelope]:
        return asyncio.run(read_events(self.bootstrap, self.topic("network"), REGISTRY))

    def wait_for(
        self, what: str, found: Callable[[list[Envelope]], bool], timeout: float = 40
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for host, process in self.agents.items():
                if process.poll() is not None:
                    pytest.fail(f"agent {host} exited: {self.log(host)}")
            with contextlib.suppress(Exception):
                if found(self.events()):
                    return
            time.sleep(0.2)
        pytest.fail(f"timed out waiting for {what}; logs: {self.log('h1')} {self.log('h2')}")

    def log(self, host: str) -> str:
        path = self.tmp / f"agent-{host}.log"
        return path.read_text()[-3000:] if path.exists() else ""


def registered(hosts: set[str]) -> Callable[[list[Envelope]], bool]:
    def found(envelopes: list[Envelope]) -> bool:
        agents = {
            e.aggregate_id for e in envelopes if isinstance(e.payload, NetworkAgentRegistered)
        }
        return agents >= hosts

    return found


def bound(envelopes: list[Envelope], guest: Guest) -> bool:
    return any(
        isinstance(e.payload, PortBound)
        and e.aggregate_id == guest.port_id
        and e.payload.host == guest.host
        for e in envelopes
    )


def unbound(envelopes: list[Envelope], guest: Guest) -> bool:
    return any(
        isinstance(e.payload, PortUnbound) and e.aggregate_id == guest.port_id for e in envelopes
    )


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:5]
    ns = {"h1": f"vh4{run}h1", "h2": f"vh4{run}h2"} | {g: f"vh4{run}g{g}" for g in GUESTS}
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    with namespaces(list(ns.values())), KafkaRelay(port, [ns["h1"], ns["h2"]]):
        # The underlay: one veth between the two hosts, the VTEPs on its ends.
        sh("ip", "link", "add", "vh4u", "type", "veth", "peer", "vh4u", "netns", ns["h2"],
           netns=ns["h1"])  # fmt: skip
        for host in ("h1", "h2"):
            sh("ip", "addr", "add", f"{VTEPS[host]}/24", "dev", "vh4u", netns=ns[host])
            sh("ip", "link", "set", "vh4u", "up", netns=ns[host])
        world = World(kafka_bootstrap, ns, tmp_path_factory.mktemp("agents"))
        try:
            for host in ("h1", "h2"):
                world.start_agent(host)
            world.wait_for("both agents to register", registered({"h1", "h2"}))
            world.write(
                "api",
                (SecurityGroupCreated(name="web", rules=WEB_RULES), WEB, "tenant-a"),
                (SecurityGroupCreated(name="locked", rules=LOCKED_RULES), LOCKED, "tenant-a"),
            )
            world.write(
                "network",
                (NetworkCreated(name="a", cidr="10.0.0.0/24", vni=1001, gateway_ip="10.0.0.1",
                                allocation_pools=()), NET_A, "tenant-a"),
                (NetworkCreated(name="b", cidr="10.0.0.0/24", vni=1002, gateway_ip="10.0.0.1",
                                allocation_pools=()), NET_B, "tenant-b"),
                (NetworkCreated(name="c", cidr="fd00:c::/64", vni=1003, gateway_ip="fd00:c::1",
                                allocation_pools=()), NET_C, "tenant-a"),
                *(
                    item
                    for g in GUESTS.values()
                    for item in (
                        (PortAllocated(network_id=g.network, mac=g.mac, ips=(g.ip,),
                                       security_groups=g.groups), g.port_id, g.tenant),
                        (PortHostAssigned(host=g.host), g.port_id, g.tenant),
                    )
                ),
            )  # fmt: skip
            world.wait_for(
                "every port bound", lambda es: all(bound(es, g) for g in GUESTS.values())
            )
            for g in GUESTS.values():
                peer = names.veth_peer(g.tap)
                plug_guest(ns[g.host], peer, ns[g.name], g.mac, [g.ip])
            yield world
        finally:
            for host in list(world.agents):
                world.stop_agent(host)


def test_guests_of_one_network_reach_each_other_across_hosts(world: World) -> None:
    assert pings(world.ns["a1"], "10.0.0.12", count=2)  # h1 -> h2 over VXLAN
    assert pings(world.ns["a2"], "10.0.0.14")  # h2 -> h1
    assert pings(world.ns["a1"], "10.0.0.14")  # one host
    assert pings(world.ns["b2"], "10.0.0.12")  # tenant B, the same addresses as tenant A
    # a1 reached a2, not b1 who has the same address on the other network.
    neighbours = sh("ip", "neigh", "show", "10.0.0.12", netns=world.ns["a1"]).stdout
    assert GUESTS["a2"].mac in neighbours
    assert GUESTS["b1"].mac not in neighbours


def test_networks_and_tenants_do_not_reach_each_other(world: World) -> None:
    assert not pings(world.ns["a1"], "10.0.0.20")  # b2, on a1's host, other tenant
    assert not pings(world.ns["b2"], "10.0.0.11")  # a1
    assert not pings(world.ns["b1"], "10.0.0.13")  # a3, on b1's host


def sniff(world: World, guest: str) -> subprocess.Popen[str]:
    """Capture on the guest's eth0 until a frame marked `virga-end` arrives (20 s at most)."""
    sniffer = subprocess.Popen(
        ["ip", "netns", "exec", world.ns[guest], sys.executable, FRAMES, "sniff", "eth0", "20",
         "virga-end"],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert sniffer.stdout is not None
    assert sniffer.stdout.readline().strip() == "listening"
    return sniffer


def test_spoofed_and_forged_frames_are_dropped(world: World) -> None:
    a1, a2 = GUESTS["a1"], GUESTS["a2"]
    sniffer = sniff(world, "a2")
    sent = {
        "legit": frames.ipv4_icmp(a1.mac, a2.mac, a1.ip, a2.ip, b"virga-legit"),
        "mac": frames.ipv4_icmp("02:00:0a:00:00:99", a2.mac, a1.ip, a2.ip, b"virga-mac"),
        "ip": frames.ipv4_icmp(a1.mac, a2.mac, "10.0.0.99", a2.ip, b"virga-ip"),
        "arp-legit": frames.arp_reply(a1.mac, a1.mac, a1.ip, a1.ip),
        "arp-forged": frames.arp_reply(a1.mac, a1.mac, GUESTS["a3"].ip, a2.ip),
        "arp-mac": frames.arp_reply(a1.mac, "02:00:0a:00:00:99", a1.ip, a2.ip),
        "na-legit": frames.neighbour_advert(a1.mac, link_local(a1.mac), link_local(a1.mac)),
        "na-forged": frames.neighbour_advert(a1.mac, link_local(a1.mac), "fd00::99"),
        "ra": frames.router_advert(a1.mac, link_local(a1.mac)),
        "end": frames.ipv4_icmp(a1.mac, a2.mac, a1.ip, a2.ip, b"virga-end"),
    }
    sh(sys.executable, FRAMES, "send", "eth0", *(f.hex() for f in sent.values()),
       netns=world.ns["a1"])  # fmt: skip
    captured, _ = sniffer.communicate(timeout=30)
    arrived = {name for name, frame in sent.items() if frame.hex() in captured}
    assert arrived == {"legit", "arp-legit", "na-legit", "end"}


def test_ipv6_guests_reach_each_other_and_cannot_spoof(world: World) -> None:
    c1, c2 = GUESTS["c1"], GUESTS["c2"]
    assert pings(world.ns["c1"], c2.ip, count=2)  # neighbour discovery, then echo, over VXLAN
    sniffer = sniff(world, "c2")
    sent = {
        "legit": frames.ipv6_echo(c1.mac, c2.mac, c1.ip, c2.ip, b"virga-legit6"),
        "ip": frames.ipv6_echo(c1.mac, c2.mac, "fd00:c::99", c2.ip, b"virga-ip6"),
        "link-local": frames.ipv6_echo(c1.mac, c2.mac, "fe80::99", c2.ip, b"virga-ll6"),
        "end": frames.ipv6_echo(c1.mac, c2.mac, c1.ip, c2.ip, b"virga-end"),
    }
    sh(sys.executable, FRAMES, "send", "eth0", *(f.hex() for f in sent.values()),
       netns=world.ns["c1"])  # fmt: skip
    captured, _ = sniffer.communicate(timeout=30)
    assert {name for name, frame in sent.items() if frame.hex() in captured} == {"legit", "end"}


def tcp_open(world: World, guest: str, ip: str, port: int) -> bool:
    script = (
        "import socket,sys\n"
        "s=socket.socket(); s.settimeout(1.5)\n"
        f"sys.exit(s.connect_ex(({ip!r},{port})))\n"
    )
    return sh(sys.executable, "-c", script, netns=world.ns[guest], check=False).returncode == 0


def test_security_groups_allow_exactly_what_their_rules_say(world: World) -> None:
    server = subprocess.Popen(
        ["ip", "netns", "exec", world.ns["a3"], sys.executable, "-c",
         "import socket,time\n"
         "ls=[socket.create_server(('0.0.0.0',p)) for p in (8080,8081)]\n"
         "print('up',flush=True); time.sleep(30)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "up"
        assert tcp_open(world, "a1", "10.0.0.13", 8080)  # web: tcp 8080 from anywhere
        assert not tcp_open(world, "a1", "10.0.0.13", 8081)  # no rule
        assert pings(world.ns["a1"], "10.0.0.13")  # web: icmp
        # a1's default group takes ingress only from its own members: a3 is not one, a2 is.
        assert not pings(world.ns["a3"], "10.0.0.11")
        assert pings(world.ns["a2"], "10.0.0.11")
        # Egress as written: a5 may only ping a3, though a3 would take its TCP on 8080.
        assert pings(world.ns["a5"], "10.0.0.13")
        assert not tcp_open(world, "a5", "10.0.0.13", 8080)
        assert not pings(world.ns["a5"], "10.0.0.12")
    finally:
        server.kill()
        server.wait()
        assert server.stdout is not None
        server.stdout.close()


def test_deleting_a_port_removes_its_tap_and_filters(world: World) -> None:
    a4 = GUESTS["a4"]
    world.write("network", (PortDeleted(), a4.port_id, a4.tenant))
    world.wait_for("a4 unbound", lambda es: unbound(es, a4))
    assert a4.tap not in links(world.ns["h1"])
    rules = sh("nft", "list", "table", "bridge", table_name(PREFIX), netns=world.ns["h1"]).stdout
    assert a4.tap not in rules
    assert GUESTS["a1"].tap in rules
    assert not pings(world.ns["a1"], a4.ip)


def test_a_restart_keeps_traffic_flowing_and_removes_what_the_log_no_longer_wants(
    world: World,
) -> None:
    h1 = world.ns["h1"]
    stray = f"{PREFIX}t0123456789"
    ping = subprocess.Popen(
        ["ip", "netns", "exec", world.ns["a1"], "ping", "-i", "0.1", "-W", "1", "10.0.0.12"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        world.stop_agent("h1")
        b2 = GUESTS["b2"]
        world.write("network", (PortDeleted(), b2.port_id, b2.tenant))  # while it is down
        sh("ip", "link", "add", stray, "type", "veth", "peer", f"{stray}p", netns=h1)
        world.start_agent("h1")
        world.wait_for("b2 unbound after the restart", lambda es: unbound(es, b2))
        deadline = time.monotonic() + 10
        while stray in links(h1) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    finally:
        ping.send_signal(signal.SIGINT)
        out, _ = ping.communicate(timeout=10)
    sent = int(out.split(" packets transmitted")[0].rsplit("\n", 1)[-1])
    received = int(out.split(" received")[0].rsplit(", ", 1)[-1])
    assert sent >= 10, out  # the ping ran through the stop, the rebuild and the convergence
    assert sent - received <= 1, out
    expected = {"vh4u", GUESTS["a1"].tap, GUESTS["a5"].tap, GUESTS["c1"].tap}
    expected |= {
        f(n, PREFIX) for n in (NET_A, NET_C) for f in (names.bridge_name, names.vxlan_name)
    }
    assert {i for i in links(h1) if i.startswith(PREFIX)} == expected  # b2's and the stray gone
    assert pings(world.ns["a1"], "10.0.0.12")
