"""A host's edge, for real: DHCP and the metadata service a guest reaches at 169.254.169.254.

One host namespace runs a real agent (`ip netns exec`) with its edges on; guests are
namespaces holding their port's veth end. Two tenants' networks have the same CIDR and two
of their guests the same address, so only the network a request arrives on tells them
apart. A guest configures itself with a real DHCP client (busybox's udhcpc), except on a
network without DHCP, where it configures itself statically.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tests.support import frames
from tests.support.agents import AgentWorld, bound, registered
from tests.support.netns import KafkaRelay, namespaces, sh

from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.common import Flavor
from virga_events.catalog.network import (
    NetworkCreated,
    PortAllocated,
    PortHostAssigned,
    default_security_group_id,
    instance_port_id,
)
from virga_network.agent.core import names

pytestmark = pytest.mark.kafka

PREFIX = "ve5"
FRAMES = str(Path(frames.__file__))
HOST = "h1"
NET_A, NET_B, NET_C, NET_D = (str(uuid.uuid4()) for _ in range(4))
KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAtenantakeyxxxxxxxxxxxxxxxxxxxxxxxxxxxxx a@a"
KEY_B = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBtenantbkeyyyyyyyyyyyyyyyyyyyyyyyyyyyyy b@b"
SCRIPT = """#!/bin/sh
# udhcpc's hook: record what the lease said (the test applies it).
[ "$1" = bound ] && env > "$DHCP_OUT"
exit 0
"""


@dataclass(frozen=True)
class Guest:
    name: str
    tenant: str
    network: str
    ip: str
    mac: str
    key: str
    user_data: bytes
    instance_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def port_id(self) -> str:
        return instance_port_id(self.instance_id)

    @property
    def tap(self) -> str:
        return names.tap_name(self.port_id, PREFIX)


GUESTS = {
    g.name: g
    for g in (
        Guest("a1", "tenant-a", NET_A, "10.0.0.11", "02:00:0a:00:00:0b", KEY_A, b"#!/bin/sh\na1\n"),
        Guest("a2", "tenant-a", NET_A, "10.0.0.12", "02:00:0a:00:00:0c", KEY_A, b"a2 data"),
        # Tenant B: the same CIDR, and b1 has a1's address.
        Guest("b1", "tenant-b", NET_B, "10.0.0.11", "02:00:0b:00:00:0b", KEY_B, b"b1 secret"),
        Guest("c1", "tenant-a", NET_C, "fd00:c::11", "02:00:0c:00:00:11", KEY_A, b"c1"),
        # A network without DHCP.
        Guest("d1", "tenant-b", NET_D, "10.0.4.11", "02:00:0d:00:00:0b", KEY_B, b"d1"),
    )
}


def _events(world: AgentWorld) -> None:
    for g in GUESTS.values():
        request = InstanceRequested(
            name=f"{g.name}-vm", flavor=Flavor(name="tiny", vcpus=1, ram_mb=64, disk_gb=1),
            network=g.network, hostname=f"{g.name}-host", key_name=f"key-{g.tenant}",
            public_keys=(g.key,), user_data=base64.b64encode(g.user_data).decode(),
        )  # fmt: skip
        world.write("api", (request, g.instance_id, g.tenant))
    world.write(
        "network",
        (NetworkCreated(name="a", cidr="10.0.0.0/24", vni=2001, gateway_ip="10.0.0.1",
                        allocation_pools=()), NET_A, "tenant-a"),
        (NetworkCreated(name="b", cidr="10.0.0.0/24", vni=2002, gateway_ip="10.0.0.1",
                        allocation_pools=()), NET_B, "tenant-b"),
        (NetworkCreated(name="c", cidr="fd00:c::/64", vni=2003, gateway_ip="fd00:c::1",
                        allocation_pools=()), NET_C, "tenant-a"),
        (NetworkCreated(name="d", cidr="10.0.4.0/24", vni=2004, gateway_ip="10.0.4.1",
                        allocation_pools=(), dhcp=False), NET_D, "tenant-b"),
        *(item for g in GUESTS.values() for item in (
            # No instance_id: the port is then a veth (an instance's is a tap QEMU opens); the
            # edge finds the instance by its port id (`instance_port_id`).
            (PortAllocated(network_id=g.network, mac=g.mac, ips=(g.ip,),
                           security_groups=(default_security_group_id(g.tenant),)),
             g.port_id, g.tenant),
            (PortHostAssigned(host=HOST), g.port_id, g.tenant),
        )),
    )  # fmt: skip


@dataclass
class World:
    agents: AgentWorld
    ns: dict[str, str]
    tmp: Path


@pytest.fixture(scope="module")
def world(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    run = uuid.uuid4().hex[:5]
    ns = {"h1": f"{PREFIX}{run}h1"} | {g: f"{PREFIX}{run}g{g}" for g in GUESTS}
    port = int(kafka_bootstrap.rsplit(":", 1)[1])
    tmp = tmp_path_factory.mktemp("edge")
    (tmp / "dhcp.sh").write_text(SCRIPT)
    (tmp / "dhcp.sh").chmod(0o755)
    with namespaces(list(ns.values())), KafkaRelay(port, [ns["h1"]]):
        agents = AgentWorld(kafka_bootstrap, {"h1": ns["h1"]}, {"h1": "192.0.2.1"}, PREFIX, tmp,
                            edge=True)  # fmt: skip
        try:
            agents.start_agent(HOST)
            agents.wait_for("the agent to register", registered({HOST}))
            _events(agents)
            agents.wait_for(
                "every port bound",
                lambda es: all(bound(es, g.port_id, HOST) for g in GUESTS.values()),
            )
            for g in GUESTS.values():  # plugged in without an address: DHCP gives it
                peer = names.veth_peer(g.tap)
                sh("ip", "link", "set", peer, "netns", ns[g.name], netns=ns["h1"])
                sh("ip", "link", "set", peer, "name", "eth0", netns=ns[g.name])
                sh("ip", "link", "set", "eth0", "address", g.mac, "up", netns=ns[g.name])
            yield World(agents, ns, tmp)
        finally:
            agents.stop_all()
            agents.remove_edges()


def udhcpc(world: World, guest: str, tries: int = 10) -> tuple[Path, str]:
    """Run udhcpc in the guest (`tries` DISCOVERs a second apart): the file its hook wrote
    the lease to (absent: no lease) and what it said."""
    out = world.tmp / f"lease-{guest}"
    out.unlink(missing_ok=True)
    result = subprocess.run(
        ["ip", "netns", "exec", world.ns[guest], "udhcpc", "-i", "eth0", "-n", "-q", "-f",
         "-t", str(tries), "-T", "1", "-s", str(world.tmp / "dhcp.sh")],
        env={"DHCP_OUT": str(out), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    return out, result.stdout + result.stderr


def dhcp(world: World, guest: str) -> dict[str, str]:
    """Run udhcpc in the guest until it has a lease; apply it as a cloud image would (address,
    MTU, option 121's routes); return what the lease said."""
    out, said = udhcpc(world, guest)
    assert out.exists(), f"no lease: {said}{world.agents.log(HOST)}"
    lease = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    g = world.ns[guest]
    sh("ip", "addr", "replace", f"{lease['ip']}/{lease['mask']}", "dev", "eth0", netns=g)
    sh("ip", "link", "set", "eth0", "mtu", lease["mtu"], netns=g)
    routes = lease.get("staticroutes", "").split()
    for destination, via in zip(routes[::2], routes[1::2], strict=True):
        target = ["dev", "eth0"] if via == "0.0.0.0" else ["via", via]
        destination = "default" if destination == "0.0.0.0/0" else destination
        sh("ip", "route", "replace", destination, *target, netns=g)
    return lease


def fetch(world: World, guest: str, path: str, source: str | None = None) -> tuple[int, bytes]:
    """GET http://169.254.169.254<path> from the guest: (status, body); status 0: no answer."""
    code = (
        "import sys, urllib.request, urllib.error\n"
        "import http.client as h\n"
        "c = h.HTTPConnection('169.254.169.254', 80, timeout=3,"
        f" source_address={(source, 0) if source else None!r})\n"
        "try:\n"
        f"    c.request('GET', {path!r}); r = c.getresponse(); b = r.read()\n"
        "    sys.stdout.write(str(r.status) + ' ' + b.hex())\n"
        "except OSError:\n"
        "    sys.stdout.write('0 ')\n"
    )
    out = sh(sys.executable, "-c", code, netns=world.ns[guest]).stdout.split(" ")
    return int(out[0]), bytes.fromhex(out[1]) if len(out) > 1 else b""


def test_dhcp_gives_a_guest_its_address_router_mtu_hostname_and_edge_route(world: World) -> None:
    lease = dhcp(world, "a1")
    assert lease["ip"] == "10.0.0.11"
    assert lease["mask"] == "24"
    assert lease["router"] == "10.0.0.1"
    assert lease["mtu"] == "1450"  # the default 1500-byte underlay less VXLAN's 50
    assert lease["hostname"] == "a1-host"
    assert lease["serverid"] == "169.254.169.254"
    assert lease["staticroutes"].split() == [
        "169.254.169.254/32",
        "0.0.0.0",
        "0.0.0.0/0",
        "10.0.0.1",
    ]
    assert "dns" not in lease  # no DNS servers configured: none given
    assert "mtu 1450" in sh("ip", "link", "show", "eth0", netns=world.ns["a1"]).stdout


def test_each_guest_reads_its_own_metadata_and_never_another_tenants(world: World) -> None:
    for name in ("a1", "b1"):
        dhcp(world, name)
    a1, b1 = GUESTS["a1"], GUESTS["b1"]
    for guest in (a1, b1):
        status, body = fetch(world, guest.name, "/openstack/latest/meta_data.json")
        assert status == 200
        meta = json.loads(body)
        assert meta["uuid"] == guest.instance_id
        assert meta["hostname"] == f"{guest.name}-host"
        assert meta["public_keys"] == {f"key-{guest.tenant}": guest.key}
        assert meta["project_id"] == guest.tenant
        assert fetch(world, guest.name, "/openstack/latest/user_data") == (200, guest.user_data)
        assert fetch(world, guest.name, "/latest/meta-data/instance-id") == (
            200, guest.instance_id.encode()
        )  # fmt: skip
        assert fetch(world, guest.name, "/latest/meta-data/public-keys/0/openssh-key") == (
            200, guest.key.encode()
        )  # fmt: skip
        assert fetch(world, guest.name, "/latest/user-data") == (200, guest.user_data)
        network = json.loads(fetch(world, guest.name, "/openstack/latest/network_data.json")[1])
        assert network["links"][0]["ethernet_mac_address"] == guest.mac
        assert network["links"][0]["mtu"] == 1450
        # Its address comes by DHCP (keeping DHCP's route to 169.254.169.254), which the
        # edge answered above with `guest.ip`.
        assert network["networks"] == [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0"}]
    # The same address on two networks: each gets its own, never the other's.
    a1_meta = fetch(world, "a1", "/openstack/latest/meta_data.json")[1]
    assert b1.instance_id.encode() not in a1_meta
    assert KEY_B.encode() not in a1_meta
    assert fetch(world, "a1", "/openstack/latest/user_data")[1] != b1.user_data


def test_a_guest_spoofing_another_address_gets_nothing(world: World) -> None:
    dhcp(world, "a1")
    a1 = world.ns["a1"]
    sh("ip", "addr", "add", "10.0.0.12/32", "dev", "eth0", netns=a1)  # a2's address
    try:
        assert fetch(world, "a1", "/openstack/latest/meta_data.json", source="10.0.0.12")[0] == 0
        assert fetch(world, "a1", "/openstack/latest/meta_data.json")[0] == 200  # its own
    finally:
        sh("ip", "addr", "del", "10.0.0.12/32", "dev", "eth0", netns=a1)


def _listen_udp(netns: str, port: int) -> subprocess.Popen[str]:
    code = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
        f"s.bind(('0.0.0.0', {port})); s.settimeout(4)\n"
        "print('listening', flush=True)\n"
        "try:\n"
        "    while True:\n"
        "        data, addr = s.recvfrom(2048)\n"
        '        print(addr[0], addr[1], data.decode(errors="replace"), flush=True)\n'
        "except TimeoutError:\n"
        "    pass\n"
    )
    process = subprocess.Popen(
        ["ip", "netns", "exec", netns, sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "listening"
    return process


def test_a_guest_cannot_answer_dhcp_for_another(world: World) -> None:
    for name in ("a1", "a2"):
        dhcp(world, name)
    listener = _listen_udp(world.ns["a1"], 68)
    sender = (
        "import socket\n"
        "for sport, dst in ((67, '10.0.0.11'), (67, '255.255.255.255'), (1067, '10.0.0.11')):\n"
        "    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)\n"
        "    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'eth0')\n"
        "    s.bind(('0.0.0.0', sport)); s.sendto(b'offer-from-%d' % sport, (dst, 68)); s.close()\n"
    )
    sh(sys.executable, "-c", sender, netns=world.ns["a2"])
    received, _ = listener.communicate(timeout=20)
    # The same group lets a2's other UDP through: only its DHCP server port is refused.
    assert "offer-from-1067" in received
    assert "offer-from-67" not in received


def _discover(mac: str) -> bytes:
    """A DHCP DISCOVER for `mac` (chaddr) asking for a broadcast answer."""
    chaddr = bytes.fromhex(mac.replace(":", "")) + bytes(10)
    header = bytes([1, 1, 6, 0]) + b"\x00\x00\x12\x34" + b"\x00\x00\x80\x00" + bytes(16)
    return header + chaddr + bytes(192) + b"\x63\x82\x53\x63" + bytes([53, 1, 1, 255])


def test_a_guest_cannot_ask_dhcp_for_another_ports_lease(world: World) -> None:
    for name in ("a1", "a2"):
        dhcp(world, name)
    for mac, answered in ((GUESTS["a1"].mac, True), (GUESTS["a2"].mac, False)):
        listener = _listen_udp(world.ns["a1"], 68)
        sender = (
            "import socket\n"
            "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
            "s.bind(('10.0.0.11', 68))\n"
            f"s.sendto(bytes.fromhex({_discover(mac).hex()!r}), ('169.254.169.254', 67))\n"
        )
        sh(sys.executable, "-c", sender, netns=world.ns["a1"])
        received, _ = listener.communicate(timeout=20)
        # The edge's OFFER (broadcast, from 169.254.169.254:67) only for a1's own MAC.
        assert ("169.254.169.254 67" in received) is answered, (mac, received)


def test_dhcp_from_no_address_passes_only_as_an_ethernet_broadcast(world: World) -> None:
    a1 = GUESTS["a1"]
    dhcp(world, "a1")
    assert fetch(world, "a1", "/")[0] == 200  # a1 now knows the edge's MAC
    neighbour = sh("ip", "neigh", "show", "169.254.169.254", netns=world.ns["a1"]).stdout
    edge_mac = neighbour.split("lladdr ")[1].split()[0]
    for dst_mac, answered in ((frames.BROADCAST, True), (edge_mac, False)):
        listener = _listen_udp(world.ns["a1"], 68)
        datagram = _discover(a1.mac)
        frame = frames.ipv4_udp(a1.mac, dst_mac, "0.0.0.0", "255.255.255.255", 68, 67, datagram)
        sh(sys.executable, FRAMES, "send", "eth0", frame.hex(), netns=world.ns["a1"])
        received, _ = listener.communicate(timeout=20)
        # From 0.0.0.0 only as a broadcast: the edge would answer the unicast frame too.
        assert ("169.254.169.254 67" in received) is answered, (dst_mac, received)


def test_a_restarted_agent_serves_its_guests_again(world: World) -> None:
    dhcp(world, "a1")
    world.agents.stop_agent(HOST)
    world.agents.start_agent(HOST)
    deadline = time.monotonic() + 60
    while (status := fetch(world, "a1", "/latest/meta-data/instance-id"))[0] != 200:
        assert time.monotonic() < deadline, world.agents.log(HOST)
        time.sleep(0.5)
    assert status == (200, GUESTS["a1"].instance_id.encode())
    assert dhcp(world, "a1")["ip"] == GUESTS["a1"].ip


def test_an_ipv6_guest_gets_its_mtu_advertised_and_its_address_by_dhcpv6(world: World) -> None:
    c1 = world.ns["c1"]
    deadline = time.monotonic() + 30
    # The edge's router advertisement (its answer to the guest's solicitation): the MTU.
    while sh("cat", "/proc/sys/net/ipv6/conf/eth0/mtu", netns=c1).stdout.strip() != "1450":
        assert time.monotonic() < deadline, world.agents.log(HOST)
        time.sleep(0.5)
    lease, pid = world.tmp / "c1.leases", world.tmp / "c1.pid"
    client = subprocess.Popen(
        ["ip", "netns", "exec", c1, "dhclient", "-6", "-d", "-1", "-sf", "/bin/true",
         "-lf", str(lease), "-pf", str(pid), "eth0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 40
        while not (lease.exists() and "iaaddr fd00:c::11 " in lease.read_text()):
            assert client.poll() is None, "dhclient exited without a lease"
            assert time.monotonic() < deadline, world.agents.log(HOST)
            time.sleep(0.5)
    finally:
        client.terminate()
        client.wait(10)


def test_a_network_without_dhcp_gives_no_lease_but_metadata_with_a_static_address(
    world: World,
) -> None:
    d1, ns = GUESTS["d1"], world.ns["d1"]
    # The edge serves the network (its metadata below) but never answers its DHCP.
    out, said = udhcpc(world, "d1", tries=4)
    assert not out.exists(), said
    assert "lease of" not in said
    # Configured as its config drive says (its address, and the edge on-link as a guest
    # with a link-local route to it would): the metadata service answers it.
    sh("ip", "addr", "replace", f"{d1.ip}/24", "dev", "eth0", netns=ns)
    sh("ip", "route", "replace", "169.254.169.254", "dev", "eth0", netns=ns)
    deadline = time.monotonic() + 30
    while (status := fetch(world, "d1", "/openstack/latest/meta_data.json"))[0] != 200:
        assert time.monotonic() < deadline, world.agents.log(HOST)
        time.sleep(0.5)
    meta = json.loads(status[1])
    assert (meta["uuid"], meta["public_keys"]) == (d1.instance_id, {"key-tenant-b": KEY_B})
    network = json.loads(fetch(world, "d1", "/openstack/latest/network_data.json")[1])
    # Told to configure itself statically: no DHCP answers on its network.
    assert network["networks"] == [
        {"id": "network0", "type": "ipv4", "link": "tap0", "ip_address": d1.ip,
         "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.4.1"}]}
    ]  # fmt: skip
    assert network["links"][0]["mtu"] == 1450
