"""A real VM you can ping, through the API: Virga's own guest image, uploaded as a public image,
boots on qemu:///system (TCG) from a Ceph boot volume with a port on a tenant network, and
answers ping from a network namespace plugged into the same network as a port of its own.
The usage samples of its traffic count what the guest sent as sent (the egress billed) and
what it received as received. Deleting everything leaves no domain, no RBD image, no tap and
no allocated address behind.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import aiohttp
import libvirt
import pytest
from tests.support.api import Api, until, upload_image
from tests.support.kafka import read_events
from tests.support.netns import links, namespaces, pings, plug_guest, sh, unique
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_compute.drivers.domain_xml import domain_name
from virga_devstack import guest_image
from virga_devstack.ceph import CephCluster
from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_network.agent.core import names
from virga_rating.fold import evolve as bill
from virga_rating.state import BillingState
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"
HOST = "ping-host"
PREFIX = "vp7"
"""The network agent names every bridge, VXLAN and tap of this test with it."""


@pytest.fixture(scope="module")
def image() -> guest_image.GuestImage:
    return guest_image.build()


@pytest.fixture(scope="module")
def stack(
    libvirtd: None,
    kafka_bootstrap: str,
    ceph_cluster: CephCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("ping"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        **on_ceph(ceph_cluster),
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
    """(admin, tenant, tenant id)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        tenant_id, token = await admin.create_tenant(f"ping-{uuid.uuid4().hex[:6]}")
        yield admin, admin.as_token(token), tenant_id


DROPPED = (400, 1400)
"""UDP datagrams to a port the guest does not listen on, and their payload: received, and
dropped (but for a few rate-limited ICMP errors)."""
ECHOED = (40, 1000)
"""Echo requests, and their payload: each makes the guest send a reply as large."""
FRAME = 14 + 20 + 8
"""Ethernet, IPv4 and UDP or ICMP headers: what a tap counts beyond the payload."""
SLACK = 32 << 10
"""What else the guest may send meanwhile: ICMP port-unreachables, ARP."""


async def usage_after(stack: Stack, instance_id: str, moment: float, skip: int = 0) -> Envelope:
    """The (`skip`+1)-th usage sample of the instance recorded after `moment` (epoch)."""
    deadline = time.monotonic() + 60
    while True:
        events = await read_events(
            stack.bootstrap, event_topic("compute", stack.namespace), REGISTRY
        )
        later = [
            e
            for e in events
            if e.type == "UsageSampled"
            and e.aggregate_id == instance_id
            and e.occurred_at.timestamp() > moment
        ]
        if len(later) > skip:
            return later[skip]
        assert time.monotonic() < deadline, f"no usage sample of {instance_id} after {moment}"
        await asyncio.sleep(1)


def egress_billed(samples: list[Envelope]) -> int:
    state = BillingState()
    for sample in samples:
        state = bill(state, sample)
    return sum(sample.bytes for usage in state.instances.values() for sample in usage.egress)


async def traffic_is_counted_from_the_guest(
    stack: Stack, instance_id: str, prober: str, ip: str
) -> None:
    """Much more goes to the guest than comes back: swapped counters would bill the tenant
    for what it received."""
    before = await usage_after(stack, instance_id, time.time())
    count, size = DROPPED
    blast = (
        "import socket, time\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        f"for _ in range({count}):\n"
        f"    s.sendto(bytes({size}), ({ip!r}, 9))\n"
        "    time.sleep(0.002)\n"
    )
    await asyncio.to_thread(sh, sys.executable, "-c", blast, netns=prober)
    requests, payload = ECHOED
    pinged = await asyncio.to_thread(
        sh, "ping", "-q", "-c", str(requests), "-s", str(payload), "-i", "0.05", ip,
        netns=prober, check=False,
    )  # fmt: skip
    replies = int(re.search(r"(\d+) (?:packets )?received", pinged.stdout)[1])  # type: ignore[index]
    assert replies > 0, pinged.stdout
    after = await usage_after(stack, instance_id, time.time(), skip=1)  # a whole period later
    received = after.payload.net_rx_bytes - before.payload.net_rx_bytes
    sent = after.payload.net_tx_bytes - before.payload.net_tx_bytes
    back = replies * (payload + FRAME)
    assert received >= count * (size + FRAME) + requests * (payload + FRAME), (received, sent)
    assert back <= sent <= back + SLACK, (received, sent, back)
    billed = egress_billed([before, after]) - egress_billed([before])
    assert billed == sent


def domains() -> set[str]:
    connection = libvirt.open(URI)
    try:
        return {d.name() for d in connection.listAllDomains()}
    finally:
        connection.close()


async def test_a_guest_boots_from_a_ceph_volume_and_answers_ping_then_leaves_nothing(
    stack: Stack,
    clients: tuple[Api, Api, str],
    image: guest_image.GuestImage,
    ceph_pool: RbdDriver,
) -> None:
    admin, tenant, tenant_id = clients
    uploaded = await upload_image(admin, image.disk)
    network = await tenant.call("POST", "/v1/networks", {"name": "ping", "cidr": "10.77.0.0/24"})
    net_path = f"/v1/networks/{network['id']}"
    await until(tenant, net_path, lambda v: v["status"] == "ACTIVE")

    # The prober: a port of the tenant bound on the host as a veth, whose other end becomes
    # eth0 of a namespace this test made.
    probe = await admin.call(
        "POST",
        "/v1/ports",
        {"network_id": network["id"], "host": HOST, "tenant_id": tenant_id},
    )
    probe_path = f"/v1/ports/{probe['id']}"
    probe = await until(tenant, probe_path, lambda v: v["status"] == "ACTIVE")

    instance = await tenant.create_instance(
        "pinger", image=uploaded["id"], network=network["id"], flavor="m1.tiny"
    )
    instance_path = f"/v1/instances/{instance['id']}"
    running = await until(tenant, instance_path, lambda v: v["status"] in {"RUNNING", "ERROR"})
    assert running["status"] == "RUNNING", running
    [address] = running["addresses"]
    assert address["network"] == network["id"]

    with namespaces([unique(PREFIX)]) as [prober]:
        peer = names.veth_peer(names.tap_name(probe["id"], PREFIX))
        plug_guest("", peer, prober, probe["mac"], probe["ips"])
        deadline = time.monotonic() + 120  # the guest boots under TCG
        while not await asyncio.to_thread(pings, prober, address["ip"]):
            assert time.monotonic() < deadline, f"{address['ip']} never answered"
        # Another tenant's address space is not this one: the probe's own address is taken.
        assert probe["ips"][0] != address["ip"]
        await traffic_is_counted_from_the_guest(stack, instance["id"], prober, address["ip"])

    await tenant.call("DELETE", instance_path)
    await until(tenant, instance_path, lambda v: v is None or v["status"] == "DELETED")
    await tenant.call("DELETE", probe_path)
    await until(tenant, probe_path, lambda v: v is None)
    await tenant.call("DELETE", net_path)
    await until(tenant, net_path, lambda v: v is None)
    ports = await tenant.call("GET", "/v1/ports")
    assert ports["items"] == []  # no address allocated any more

    assert domain_name(instance["id"]) not in domains()
    deadline = time.monotonic() + 30
    while virga_links():  # the agent converges on the log: no tap, bridge or VXLAN
        assert time.monotonic() < deadline, virga_links()
        await asyncio.sleep(0.5)
    pool = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
    assert f"volume-{instance['id']}" not in await ceph_pool.list()
