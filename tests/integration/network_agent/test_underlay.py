"""The underlay (issue #13): VXLAN from a host that is no known VTEP reaches no guest, and a
known VTEP carries only the frames of its own ports, into their own networks.

Two hosts with agents and guests, as in test_two_hosts.py, but joined by a switch (a bridge in
its own namespace) that a third namespace, the attacker, is plugged into as well. VXLAN
packets are made by hand (tests/support/vxlan.py) and sent over plain UDP sockets to host 1's
VTEP; what reaches a guest is captured on its eth0 (tests/support/frames.py).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support import frames, vxlan
from tests.support.agents import AgentWorld, bound, registered, unbound
from tests.support.netns import KafkaRelay, namespaces, pings, plug_guest, sh

from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortDeleted,
    PortHostAssigned,
    default_security_group_id,
)
from virga_network.agent.core import names
from virga_network.agent.core.nft_rules import link_local, table_name

pytestmark = pytest.mark.kafka

PREFIX = "vu5"
VTEPS = {"h1": "192.0.2.1", "h2": "192.0.2.2"}
ATTACKER = "192.0.2.9"
VTEPS6 = {"h1": "2001:db8:4789::1", "h2": "2001:db8:4789::2"}
ATTACKER6 = "2001:db8:4789::9"
VNI_A, VNI_B = 1001, 1002
FRAMES, VXLAN = str(Path(frames.__file__)), str(Path(vxlan.__file__))


@dataclass(frozen=True)
class Guest:
    name: str
    tenant: str
    network: str
    host: str
    ip: str
    mac: str
    port_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


NET_A, NET_B = str(uuid.uuid4()), str(uuid.uuid4())
GUESTS = {
    g.name: g
    for g in (
        Guest("a1", "tenant-a", NET_A, "h1", "10.0.0.11", "02:00:0a:00:00:0b"),
        Guest("a4", "tenant-a", NET_A, "h1", "10.0.0.14", "02:00:0a:00:00:0e"),
        Guest("a2", "tenant-a", NET_A, "h2", "10.0.0.12", "02:00:0a:00:00:0c"),
        Guest("a3", "tenant-a", NET_A, "h2", "10.0.0.13", "02:00:0a:00:00:0d"),
        Guest("b1", "tenant-b", NET_B, "h2", "10.0.0.22", "02:00:0b:00:00:16"),
        Guest("b2", "tenant-b", NET_B, "h1", "10.0.0.21", "02:00:0b:00:00:15"),
    )
}


@contextlib.contextmanager
def underlay_world(
    kafka_bootstrap: str, tmp: Path, vteps: dict[str, str], attacker: str
) -> Iterator[AgentWorld]:
    """Two hosts with agents and guests, and the attacker, on one switched underlay whose
    addresses are `vteps` and `attacker` (IPv4 or IPv6)."""
    run = uuid.uuid4().hex[:5]
    ns = {h: f"vu5{run}{h}" for h in ("h1", "h2", "x", "ul")}
    ns |= {g: f"vu5{run}g{g}" for g in GUESTS}
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    with namespaces(list(ns.values())), KafkaRelay(port, [ns["h1"], ns["h2"]]):
        # The underlay: a switch (bridge) in its own namespace; both hosts and the attacker.
        sh("ip", "link", "add", "sw", "type", "bridge", netns=ns["ul"])
        sh("ip", "link", "set", "sw", "up", netns=ns["ul"])
        for host, address in (*vteps.items(), ("x", attacker)):
            sh("ip", "link", "add", "u0", "type", "veth", "peer", f"p{host}", "netns", ns["ul"],
               netns=ns[host])  # fmt: skip
            sh("ip", "link", "set", f"p{host}", "master", "sw", "up", netns=ns["ul"])
            # IPv6 without duplicate address detection: usable at once.
            cidr, extra = (f"{address}/64", ["nodad"]) if ":" in address else (f"{address}/24", [])
            sh("ip", "addr", "add", cidr, "dev", "u0", *extra, netns=ns[host])
            sh("ip", "link", "set", "u0", "up", netns=ns[host])
        world = AgentWorld(kafka_bootstrap, ns, vteps, PREFIX, tmp)
        try:
            for host in vteps:
                world.start_agent(host)
            world.wait_for("both agents to register", registered(set(vteps)))
            world.write(
                "network",
                (NetworkCreated(name="a", cidr="10.0.0.0/24", vni=VNI_A, gateway_ip="10.0.0.1",
                                allocation_pools=()), NET_A, "tenant-a"),
                (NetworkCreated(name="b", cidr="10.0.0.0/24", vni=VNI_B, gateway_ip="10.0.0.1",
                                allocation_pools=()), NET_B, "tenant-b"),
                *(
                    item
                    for g in GUESTS.values()
                    for item in (
                        (PortAllocated(network_id=g.network, mac=g.mac, ips=(g.ip,),
                                       security_groups=(default_security_group_id(g.tenant),)),
                         g.port_id, g.tenant),
                        (PortHostAssigned(host=g.host), g.port_id, g.tenant),
                    )
                ),
            )  # fmt: skip
            world.wait_for(
                "every port bound",
                lambda es: all(bound(es, g.port_id, g.host) for g in GUESTS.values()),
            )
            for g in GUESTS.values():
                plug_guest(ns[g.host], names.veth_peer(g.tap), ns[g.name], g.mac, [g.ip])
            yield world
        finally:
            world.stop_all()


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentWorld]:
    with underlay_world(
        kafka_bootstrap, tmp_path_factory.mktemp("agents"), VTEPS, ATTACKER
    ) as world:
        yield world


@pytest.fixture(scope="module")
def world6(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentWorld]:
    """The same over an IPv6 underlay: VTEPs and the attacker with IPv6 addresses only."""
    with underlay_world(
        kafka_bootstrap, tmp_path_factory.mktemp("agents6"), VTEPS6, ATTACKER6
    ) as world:
        yield world


def underlay_set(world: AgentWorld, host: str) -> str:
    family = "underlay6" if ":" in world.vteps[host] else "underlay4"
    return sh("nft", "list", "set", "inet", table_name(PREFIX), family,
              netns=world.ns[host]).stdout  # fmt: skip


def wait_until_filtered(world: AgentWorld, host: str, present: set[str], absent: set[str]) -> None:
    """Wait until `host`'s underlay set holds the MACs `present` and none of `absent`."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listing = underlay_set(world, host)
        macs = {m for m in present | absent if f"0x{m.replace(':', '').lstrip('0')}" in listing}
        if macs == present:
            return
        time.sleep(0.2)
    pytest.fail(f"{host}'s underlay set never held exactly {present}: {listing}")


def sniff(world: AgentWorld, guest: str) -> subprocess.Popen[str]:
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


def inject(world: AgentWorld, sender: str, source: str, vni: int, *sent: bytes) -> None:
    """Send `sent` as VXLAN packets with `vni` from namespace `sender` to host 1's VTEP."""
    sh(sys.executable, VXLAN, "send", source, world.vteps["h1"], str(vni),
       *(f.hex() for f in sent), netns=world.ns[sender])  # fmt: skip


def arrived(sniffer: subprocess.Popen[str], sent: dict[str, bytes]) -> set[str]:
    captured, _ = sniffer.communicate(timeout=30)
    return {name for name, frame in sent.items() if frame.hex() in captured}


def test_guests_reach_each_other_across_the_filtered_underlay(world: AgentWorld) -> None:
    a1, a2, a3 = GUESTS["a1"], GUESTS["a2"], GUESTS["a3"]
    wait_until_filtered(world, "h1", {a2.mac, a3.mac, GUESTS["b1"].mac}, {a1.mac})
    assert pings(world.ns["a1"], a2.ip, count=2)  # h1 -> h2 over VXLAN
    assert pings(world.ns["a3"], a1.ip)  # h2 -> h1
    assert pings(world.ns["b2"], GUESTS["b1"].ip)  # the other network
    assert f"{VTEPS['h2']} . 0x3e9 . 0x2000a00000c" in underlay_set(world, "h1")  # h2, VNI, a2


def test_vxlan_from_a_host_that_is_no_known_vtep_reaches_no_guest(world: AgentWorld) -> None:
    a1, a2 = GUESTS["a1"], GUESTS["a2"]
    evil = "02:00:0a:00:00:66"
    sniffer = sniff(world, "a1")
    forged = {
        # Anyone on the underlay, VNIs being sequential: a2's address is now at `evil`...
        "arp": frames.arp_reply(evil, evil, a2.ip, a1.ip),
        # ... a2's own MAC and address, as if it came from host 2 ...
        "spoof": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-x-spoof"),
        "arp-spoof": frames.arp_reply(a2.mac, a2.mac, a2.ip, a1.ip),
        # ... and into the other network, guessing its VNI.
        "spoof-b": frames.ipv4_icmp(GUESTS["b1"].mac, a1.mac, a2.ip, a1.ip, b"virga-x-b"),
    }
    inject(world, "x", ATTACKER, VNI_A, forged["arp"], forged["spoof"], forged["arp-spoof"])
    inject(world, "x", ATTACKER, VNI_B, forged["spoof-b"])
    time.sleep(0.5)  # what the attacker sent is through the switch before the end marker
    end = {"end": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-end")}
    inject(world, "h2", VTEPS["h2"], VNI_A, end["end"])  # host 2 itself: it passes
    assert arrived(sniffer, forged | end) == {"end"}
    neighbours = sh("ip", "neigh", "show", a2.ip, netns=world.ns["a1"]).stdout
    assert evil not in neighbours


def test_a_known_vtep_carries_only_its_own_ports_frames_into_their_network(
    world: AgentWorld,
) -> None:
    a1, a2, a3, a4, b1 = (GUESTS[g] for g in ("a1", "a2", "a3", "a4", "b1"))
    sniffer = sniff(world, "a1")
    sent = {
        "legit": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-legit"),
        "arp-legit": frames.arp_reply(a2.mac, a2.mac, a2.ip, a2.ip),
        # A port of host 1 (a4) is not on host 2, whatever host 2 says.
        "other-host": frames.ipv4_icmp(a4.mac, a1.mac, a4.ip, a1.ip, b"virga-h1-port"),
        "unknown-mac": frames.ipv4_icmp("02:00:0a:00:00:99", a1.mac, a2.ip, a1.ip, b"virga-mac"),
        # a3 is on host 2 and in a1's group, but the address is not a2's.
        "other-ip": frames.ipv4_icmp(a2.mac, a1.mac, a3.ip, a1.ip, b"virga-ip"),
        "arp-forged": frames.arp_reply(a2.mac, a2.mac, a3.ip, a1.ip),
        "arp-mac": frames.arp_reply(a2.mac, a3.mac, a3.ip, a1.ip),
        # b1 is on host 2, but on the other network.
        "other-network": frames.ipv4_icmp(b1.mac, a1.mac, b1.ip, a1.ip, b"virga-net"),
        "ra": frames.router_advert(a2.mac, link_local(a2.mac)),
        "na-forged": frames.neighbour_advert(a2.mac, link_local(a2.mac), link_local(a1.mac)),
        "na-legit": frames.neighbour_advert(a2.mac, link_local(a2.mac), link_local(a2.mac)),
        "end": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-end"),
    }
    inject(world, "h2", VTEPS["h2"], VNI_A, *sent.values())  # one socket: frames keep order
    assert arrived(sniffer, sent) == {"legit", "arp-legit", "na-legit", "end"}


def test_the_underlay_filters_follow_the_log(world: AgentWorld) -> None:
    a1, a2, a3 = GUESTS["a1"], GUESTS["a2"], GUESTS["a3"]
    world.write("network", (PortDeleted(), a3.port_id, a3.tenant))
    world.wait_for("a3 unbound", lambda es: unbound(es, a3.port_id))
    wait_until_filtered(world, "h1", {a2.mac, GUESTS["b1"].mac}, {a3.mac})
    sniffer = sniff(world, "a1")
    sent = {
        "gone": frames.arp_reply(a3.mac, a3.mac, a3.ip, a1.ip),
        "end": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-end"),
    }
    inject(world, "h2", VTEPS["h2"], VNI_A, *sent.values())
    assert arrived(sniffer, sent) == {"end"}
    assert pings(world.ns["a1"], a2.ip)


def test_over_an_ipv6_underlay_only_known_vteps_are_heard(world6: AgentWorld) -> None:
    """VTEPs with IPv6 addresses: guests reach each other over the tunnel, a sender that is no
    VTEP reaches no guest, and host 2's VTEP carries its own port's frames."""
    a1, a2 = GUESTS["a1"], GUESTS["a2"]
    wait_until_filtered(world6, "h1", {a2.mac, GUESTS["a3"].mac, GUESTS["b1"].mac}, {a1.mac})
    assert VTEPS6["h2"] in underlay_set(world6, "h1")
    assert pings(world6.ns["a1"], a2.ip)  # h1 -> h2 over VXLAN over IPv6
    sniffer = sniff(world6, "a1")
    forged = {
        "arp": frames.arp_reply(a2.mac, a2.mac, a2.ip, a1.ip),
        "spoof": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-x6-spoof"),
    }
    inject(world6, "x", ATTACKER6, VNI_A, *forged.values())
    time.sleep(0.5)  # what the attacker sent is through the switch before host 2's frames
    legit = {
        "legit": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-legit6"),
        "end": frames.ipv4_icmp(a2.mac, a1.mac, a2.ip, a1.ip, b"virga-end"),
    }
    inject(world6, "h2", VTEPS6["h2"], VNI_A, *legit.values())
    assert arrived(sniffer, forged | legit) == {"legit", "end"}
