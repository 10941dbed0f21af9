"""A real VM on a public address: Virga's guest boots on qemu:///system on a tenant network
behind a router, gets a floating IP, and answers ping on it from an "internet" namespace the
test plugs into the external network's bridge, which the stack makes as `make up` does (a
bridge in the host's namespace holding the external network's gateway address). Its port's
security group lets ICMP in. Once dissociated, the address stops answering. Deleting
everything leaves no domain, interface, namespace or RBD image behind.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import libvirt
import pytest
from tests.support.api import Api, until, upload_image
from tests.support.netns import links, namespaces, pings, sh, unique
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_compute.drivers.domain_xml import domain_name
from virga_devstack import guest_image
from virga_devstack.ceph import CephCluster
from virga_devstack.external import ExternalSegment
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"
HOST = "fip-host"
PREFIX = "vf4"
"""The network agent names every bridge, VXLAN, tap and router namespace of this test with it."""
SEGMENT = ExternalSegment(bridge=f"{PREFIX}ext", address="198.18.4.1/24", name="fip-public")
"""The stack's external network (198.18.0.0/15: benchmarking addresses, nobody's)."""
INTERNET = "198.18.4.2/24"
"""The internet namespace's address, below the pools (they start at .10)."""
ICMP_IN = {"direction": "ingress", "protocol": "icmp", "remote_cidr": "0.0.0.0/0"}


@pytest.fixture(scope="module")
def image() -> guest_image.GuestImage:
    return guest_image.build()


def virga_links() -> set[str]:
    return {name for name in links("") if name.startswith(PREFIX)}


def virga_namespaces() -> set[str]:
    netns = Path("/run/netns")
    return {p.name for p in netns.glob(f"{PREFIX}*")} if netns.exists() else set()


@pytest.fixture(scope="module")
def stack(
    libvirtd: None,
    kafka_bootstrap: str,
    ceph_cluster: CephCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("fip"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        **on_ceph(ceph_cluster),
        network_agent_prefix=PREFIX,
        external=SEGMENT,
    )
    try:
        with stack.running():
            yield stack
    finally:
        for name in virga_links():  # a failed test leaves no interface behind
            sh("ip", "link", "del", name, check=False)
        for name in virga_namespaces():
            sh("ip", "netns", "del", name, check=False)


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[tuple[Api, Api]]:
    """(admin, tenant)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        _, token = await admin.create_tenant(f"fip-{uuid.uuid4().hex[:6]}")
        yield admin, admin.as_token(token)


def plug_internet(netns: str) -> None:
    """`netns` on the external bridge, as a machine of the internet would be."""
    outside, inside = unique(PREFIX), "eth0"
    sh("ip", "link", "add", outside, "type", "veth", "peer", "name", inside, "netns", netns)
    sh("ip", "link", "set", outside, "master", SEGMENT.bridge, "up")
    sh("ip", "addr", "add", INTERNET, "dev", inside, netns=netns)
    sh("ip", "link", "set", inside, "up", netns=netns)


def domains() -> set[str]:
    connection = libvirt.open(URI)
    try:
        return {d.name() for d in connection.listAllDomains()}
    finally:
        connection.close()


async def answers(netns: str, ip: str, wanted: bool, seconds: float) -> float:
    """Seconds until `ip` answers a ping from `netns` (`wanted`) or stops answering."""
    start = time.monotonic()
    while await asyncio.to_thread(pings, netns, ip, 1, 0.5) != wanted:
        assert time.monotonic() - start < seconds, f"{ip} still {'not ' * wanted}answering"
    return time.monotonic() - start


async def test_a_guest_answers_on_its_floating_ip_until_it_is_dissociated(
    stack: Stack,
    clients: tuple[Api, Api],
    image: guest_image.GuestImage,
    ceph_pool: RbdDriver,
) -> None:
    admin, tenant = clients
    began = time.monotonic()
    uploaded = await upload_image(admin, image.disk)
    network = await tenant.call("POST", "/v1/networks", {"name": "fip", "cidr": "10.79.0.0/24"})
    net_path = f"/v1/networks/{network['id']}"
    external = stack.external_network_id
    router = await tenant.call(
        "POST", "/v1/routers", {"name": "edge", "external_network_id": external}
    )
    router_path = f"/v1/routers/{router['id']}"
    group = await tenant.call("POST", "/v1/security-groups", {"name": "ping", "rules": [ICMP_IN]})
    await until(tenant, net_path, lambda v: v["status"] == "ACTIVE")
    await until(tenant, router_path, lambda v: v["status"] == "ACTIVE")  # its address taken
    await tenant.call("POST", f"{router_path}/interfaces", {"network_id": network["id"]})
    instance = await tenant.create_instance(
        "public",
        image=uploaded["id"],
        network=network["id"],
        flavor="m1.tiny",
        security_groups=[group["id"]],
    )
    instance_path = f"/v1/instances/{instance['id']}"
    fip = await tenant.call("POST", "/v1/floating-ips", {"external_network_id": external})
    fip_path = f"/v1/floating-ips/{fip['id']}"
    fip = await until(tenant, fip_path, lambda v: v["status"] == "DOWN")
    await until(tenant, router_path, lambda v: v["interfaces"][0]["status"] == "ACTIVE")
    running = await until(tenant, instance_path, lambda v: v["status"] in {"RUNNING", "ERROR"})
    assert running["status"] == "RUNNING", (running["fault"], stack.logs())
    ports = await tenant.call("GET", f"/v1/ports?instance_id={instance['id']}")
    [port] = ports["items"]
    assert port["security_groups"] == [group["id"]]

    await tenant.call("PUT", fip_path, {"port_id": port["id"]})
    await until(tenant, fip_path, lambda v: v["status"] == "ACTIVE")
    timings = {"to RUNNING": time.monotonic() - began}
    with namespaces([unique(PREFIX)]) as [internet]:
        plug_internet(internet)
        timings["associated to first reply"] = await answers(internet, fip["ip"], True, 120)
        shown = await tenant.call("GET", instance_path)
        assert fip["ip"] in str(shown), shown  # the instance's view shows its floating IP

        await tenant.call("PUT", fip_path, {"port_id": None})
        await until(tenant, fip_path, lambda v: v["status"] == "DOWN" and v["port_id"] is None)
        timings["dissociated to silence"] = await answers(internet, fip["ip"], False, 10)
        assert not await asyncio.to_thread(pings, internet, fip["ip"], 3, 1.0)
    print(", ".join(f"{what}: {seconds:.1f}s" for what, seconds in timings.items()))

    await tenant.call("DELETE", fip_path)
    await tenant.call("DELETE", instance_path)
    await until(tenant, fip_path, lambda v: v is None)
    await until(tenant, instance_path, lambda v: v is None or v["status"] == "DELETED")
    await tenant.call("DELETE", f"{router_path}/interfaces/{network['id']}")
    await until(tenant, router_path, lambda v: v["interfaces"] == [])
    await tenant.call("DELETE", router_path)
    await until(tenant, router_path, lambda v: v is None)
    await tenant.call("DELETE", f"/v1/security-groups/{group['id']}", expect=(204,))
    await tenant.call("DELETE", net_path)
    await until(tenant, net_path, lambda v: v is None)

    assert domain_name(instance["id"]) not in domains()
    deadline = time.monotonic() + 30
    while virga_links() - {SEGMENT.bridge} or virga_namespaces():
        # The agent converges on the log: no tap, bridge, VXLAN or router namespace.
        assert time.monotonic() < deadline, (virga_links(), virga_namespaces())
        await asyncio.sleep(0.5)
    pool = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
    assert f"volume-{instance['id']}" not in await ceph_pool.list()
