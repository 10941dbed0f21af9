"""Two hosts, real agents, real Kafka: guests in namespaces talk over VXLAN as the log says.

Hosts are network namespaces joined by a veth pair (their VTEPs); each runs its own agent
process (`ip netns exec`). Guests are namespaces holding the guest end of their port's veth.
The test writes the controller's and the gateway's events itself.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support import frames
from tests.support.agents import AgentWorld, registered
from tests.support.netns import KafkaRelay, links, namespaces, pings, plug_guest, sh

from virga_events import Envelope, Event
from virga_events.catalog.network import (
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
NET_R = str(uuid.uuid4())  # the restart test's own network
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


class World(AgentWorld):
    """The hosts, guests and agents of this module, and the log they share."""

    def __init__(self, bootstrap: str, run: str, ns: dict[str, str], tmp: Path) -> None:
        super().__init__(bootstrap, ns, VTEPS, PREFIX, tmp)
        self.run = run


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


def port_events(guest: Guest) -> tuple[tuple[Event, str, str | None], ...]:
    """The controller's events that allocate `guest`'s port and assign it to its host."""
    return (
        (PortAllocated(network_id=guest.network, mac=guest.mac, ips=(guest.ip,),
                       security_groups=guest.groups), guest.port_id, guest.tenant),
        (PortHostAssigned(host=guest.host), guest.port_id, guest.tenant),
    )  # fmt: skip


@contextlib.contextmanager
def own_guest(world: World, guest: Guest) -> Iterator[str]:
    """A port of one test's own, bound and plugged into a guest namespace of its own (yielded).

    The module's guests are never deleted, so every test finds them whatever ran before;
    what a test deletes it makes here. On exit the port is deleted (unless the test did) and
    unbound before its namespace goes, so the world is as the test found it.
    """
    netns = f"vh4{world.run}g{guest.name}"
    with namespaces([netns]):
        world.write("network", *port_events(guest))
        world.wait_for(f"{guest.name} bound", lambda es: bound(es, guest))
        plug_guest(world.ns[guest.host], names.veth_peer(guest.tap), netns, guest.mac, [guest.ip])
        try:
            yield netns
        finally:
            if not unbound(world.events(), guest):
                world.write("network", (PortDeleted(), guest.port_id, guest.tenant))
                world.wait_for(f"{guest.name} unbound", lambda es: unbound(es, guest))


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
        world = World(kafka_bootstrap, run, ns, tmp_path_factory.mktemp("agents"))
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
                *(item for g in GUESTS.values() for item in port_events(g)),
            )  # fmt: skip
            world.wait_for(
                "every port bound", lambda es: all(bound(es, g) for g in GUESTS.values())
            )
            for g in GUESTS.values():
                peer = names.veth_peer(g.tap)
                plug_guest(ns[g.host], peer, ns[g.name], g.mac, [g.ip])
            # Each agent learns the other's VTEP from its host topic, which it finds within
            # seconds of the other's start (it looks for new hosts' topics every 5 s).
            deadline = time.monotonic() + 60
            while not pings(ns["a1"], GUESTS["a2"].ip):
                assert time.monotonic() < deadline, "the two hosts never reached each other"
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


def test_tagged_and_foreign_frames_are_dropped_and_arp_probes_pass(world: World) -> None:
    a1, a2 = GUESTS["a1"], GUESTS["a2"]

    def legit(marker: bytes) -> bytes:
        return frames.ipv4_icmp(a1.mac, a2.mac, a1.ip, a2.ip, marker)

    sent = {
        # A tag may reach the receiver untagged (the kernel keeps tags out of the frame's
        # bytes), so frames are recognised by their markers.
        "vlan": frames.vlan_tagged(legit(b"virga-vlan"), 5),
        "qinq": frames.vlan_tagged(legit(b"virga-qinq"), 6, tpid=0x88A8),
        "ethertype": frames.other_ethertype(a1.mac, a2.mac, 0x88B5, b"virga-ethertype"),
        "probe": frames.arp_probe(a1.mac, a1.ip),
        "end": frames.ipv4_icmp(a1.mac, a2.mac, a1.ip, a2.ip, b"virga-end"),
    }
    markers = {
        "vlan": b"virga-vlan",
        "qinq": b"virga-qinq",
        "ethertype": b"virga-ethertype",
        "probe": sent["probe"][14:],  # the ARP body: the sender and target it names
        "end": b"virga-end",
    }
    sniffer = sniff(world, "a2")
    sh(sys.executable, FRAMES, "send", "eth0", *(f.hex() for f in sent.values()),
       netns=world.ns["a1"])  # fmt: skip
    captured, _ = sniffer.communicate(timeout=30)
    arrived = {name for name, marker in markers.items() if marker.hex() in captured}
    assert arrived == {"probe", "end"}


def test_ipv6_router_adverts_and_redirects_are_dropped_and_address_probes_pass(
    world: World,
) -> None:
    c1, c2 = GUESTS["c1"], GUESTS["c2"]
    sent = {
        # From c1's own address, which c2's default group admits: only anti-spoofing can stop
        # them (a1's in the IPv4 test above has no IPv6 address, so a2's group drops its RA).
        "ra": frames.router_advert(c1.mac, c1.ip),
        # A redirect to c2: traffic for fd00:c::99 should go through c1.
        "redirect": frames.redirect(c1.mac, c2.mac, c1.ip, c2.ip, c1.ip, "fd00:c::99"),
        "redirect-ll": frames.redirect(
            c1.mac,
            c2.mac,
            link_local(c1.mac),
            link_local(c2.mac),
            link_local(c1.mac),
            "fd00:c::99",
        ),
        "dad": frames.neighbour_solicit_dad(c1.mac, "fd00:c::77"),
        "end": frames.ipv6_echo(c1.mac, c2.mac, c1.ip, c2.ip, b"virga-end"),
    }
    sniffer = sniff(world, "c2")
    sh(sys.executable, FRAMES, "send", "eth0", *(f.hex() for f in sent.values()),
       netns=world.ns["c1"])  # fmt: skip
    captured, _ = sniffer.communicate(timeout=30)
    assert {name for name, frame in sent.items() if frame.hex() in captured} == {"dad", "end"}


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
    doomed = Guest("d1", "tenant-a", NET_A, "h1", "10.0.0.16", "02:00:0a:00:00:10", (DEFAULT_A,))
    with own_guest(world, doomed):
        assert pings(world.ns["a1"], doomed.ip)
        world.write("network", (PortDeleted(), doomed.port_id, doomed.tenant))
        world.wait_for("d1 unbound", lambda es: unbound(es, doomed))
        assert doomed.tap not in links(world.ns["h1"])
        table = table_name(PREFIX)
        rules = sh("nft", "list", "table", "bridge", table, netns=world.ns["h1"]).stdout
        assert doomed.tap not in rules
        assert GUESTS["a1"].tap in rules
        assert not pings(world.ns["a1"], doomed.ip)


def test_a_restart_keeps_traffic_flowing_and_removes_what_the_log_no_longer_wants(
    world: World,
) -> None:
    h1 = world.ns["h1"]
    stray = f"{PREFIX}t0123456789"
    # A network of the test's own with one port on h1, deleted while the agent is down: its
    # tap, bridge and VXLAN interface must go at the restart.
    world.write("network", (NetworkCreated(name="r", cidr="10.9.0.0/24", vni=1004,
                gateway_ip="10.9.0.1", allocation_pools=()), NET_R, "tenant-b"))  # fmt: skip
    r1 = Guest("r1", "tenant-b", NET_R, "h1", "10.9.0.11", "02:00:09:00:00:0b", (DEFAULT_B,))
    r1_links = {r1.tap, names.bridge_name(NET_R, PREFIX), names.vxlan_name(NET_R, PREFIX)}
    with own_guest(world, r1):
        assert r1_links <= links(h1)
        restart_h1_while_deleting(world, r1, stray)
    on_h1 = [g for g in GUESTS.values() if g.host == "h1"]
    expected = {"vh4u", *(g.tap for g in on_h1)}
    expected |= {f(g.network, PREFIX) for g in on_h1 for f in (names.bridge_name, names.vxlan_name)}
    # r1's tap, bridge and VXLAN interface and the stray gone; the module's guests' kept.
    assert {i for i in links(h1) if i.startswith(PREFIX)} == expected
    assert pings(world.ns["a1"], "10.0.0.12")


def restart_h1_while_deleting(world: World, doomed: Guest, stray: str) -> None:
    """Stop h1's agent, delete `doomed`'s port and add a `stray` Virga-named tap meanwhile,
    start it again; a ping from a1 to a2 (h1 to h2) must not lose more than one packet."""
    h1 = world.ns["h1"]
    ping = subprocess.Popen(
        ["ip", "netns", "exec", world.ns["a1"], "ping", "-i", "0.1", "-W", "1", "10.0.0.12"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        world.stop_agent("h1")
        world.write("network", (PortDeleted(), doomed.port_id, doomed.tenant))  # while down
        sh("ip", "link", "add", stray, "type", "veth", "peer", f"{stray}p", netns=h1)
        world.start_agent("h1")
        world.wait_for("the port unbound after the restart", lambda es: unbound(es, doomed))
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
