"""A guest whose host dies is evacuated through the API to the other real libvirt host and
runs there exactly once: the stack of `tests/e2e/test_live_migration.py` (two libvirtd hosts
of the test's own, each with its compute and network agent, the services on the test broker
and Ceph).

Virga's guest image boots on host A from its RBD volume with a port, and answers ping from a
probe namespace. Then A's compute agent is SIGKILLed and its guest's QEMU destroyed (a host
whose hypervisor died): its heartbeats stop, A is marked down, and `evacuate` rebuilds the
guest on B from the same RBD volume after fencing A off it: it answers ping at the same
address. A's agent, started again, removes its stale domain and never starts it. Deleting
everything leaves no domain, interface or RBD image behind.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator

import libvirt
import pytest
from tests.support.api import Api, upload_image
from tests.support.api import until as until_within
from tests.support.migration_stack import MigrationStack, domains, lab_clients, two_host_lab
from tests.support.netns import links, namespaces, pings, plug_guest, unique
from tests.support.pool import audit_namespace

from virga_devstack import guest_image
from virga_devstack.ceph import CephCluster
from virga_devstack.libvirt_host import LibvirtHost
from virga_network.agent.core import names
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(900)]

until = functools.partial(until_within, seconds=180, every=0.2)
HOST_A, HOST_B = "evac-a", "evac-b"
PREFIX = "ve3"
EVACUATED_WITHIN = 90.0
"""From the evacuate request to the guest answering ping on B."""


@pytest.fixture(scope="module")
def image() -> guest_image.GuestImage:
    return guest_image.build()


@pytest.fixture(scope="module")
def lab(
    kafka_bootstrap: str, ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MigrationStack]:
    run_dir = tmp_path_factory.mktemp("evacuation")
    with two_host_lab(kafka_bootstrap, ceph_cluster, run_dir, (HOST_A, HOST_B), PREFIX) as lab:
        yield lab


@pytest.fixture
async def clients(lab: MigrationStack) -> AsyncIterator[tuple[Api, Api, str]]:
    async with lab_clients(lab, "evac") as clients:
        yield clients


def destroy(host: LibvirtHost, domain: str) -> None:
    connection = libvirt.open(host.uri)
    try:
        connection.lookupByName(domain).destroy()  # QEMU killed; the definition stays
    finally:
        connection.close()


async def host_state(admin: Api, name: str) -> str:
    listed = await admin.call("GET", "/v1/hosts?limit=100")
    [host] = [h for h in listed["items"] if h["name"] == name]
    return str(host["state"])


async def test_a_guest_of_a_dead_host_is_rebuilt_on_the_other_and_runs_once(
    lab: MigrationStack,
    clients: tuple[Api, Api, str],
    image: guest_image.GuestImage,
    ceph_pool: RbdDriver,
) -> None:
    admin, tenant, tenant_id = clients
    stack = lab.stack
    uploaded = await upload_image(admin, image.disk)
    network = await tenant.call("POST", "/v1/networks", {"name": "evac", "cidr": "10.79.0.0/24"})
    net_path = f"/v1/networks/{network['id']}"
    await until(tenant, net_path, lambda v: v["status"] == "ACTIVE")
    probe = await admin.call(
        "POST", "/v1/ports", {"network_id": network["id"], "host": HOST_B, "tenant_id": tenant_id}
    )
    probe_path = f"/v1/ports/{probe['id']}"
    probe = await until(tenant, probe_path, lambda v: v["status"] == "ACTIVE")

    disable = {"action": "disable", "reason": "boot on A"}
    await admin.call("POST", f"/v1/hosts/{HOST_B}/actions", disable, expect=(202, 200))
    instance = await tenant.create_instance(
        "survivor", image=uploaded["id"], network=network["id"], flavor="m1.tiny"
    )
    path = f"/v1/instances/{instance['id']}"
    domain = f"virga-{instance['id']}"
    running = await until(admin, path, lambda v: v["status"] in {"RUNNING", "ERROR"})
    assert (running["status"], running["host"]) == ("RUNNING", HOST_A), running
    await admin.call("POST", f"/v1/hosts/{HOST_B}/actions", {"action": "enable"}, expect=(202, 200))
    [address] = running["addresses"]

    with namespaces([unique(PREFIX)]) as [prober]:
        peer = names.veth_peer(names.tap_name(probe["id"], PREFIX))
        plug_guest(lab.netns[HOST_B], peer, prober, probe["mac"], probe["ips"])
        deadline = time.monotonic() + 180  # the guest boots under TCG
        while not await asyncio.to_thread(pings, prober, address["ip"]):
            assert time.monotonic() < deadline, f"{address['ip']} never answered"

        # Host A dies: its compute agent SIGKILLed, its guest's QEMU gone.
        stack.processes[f"compute-{HOST_A}"].kill()
        await asyncio.to_thread(destroy, lab.hosts[HOST_A], domain)
        deadline = time.monotonic() + 60
        while await host_state(admin, HOST_A) != "down":
            assert time.monotonic() < deadline, "host A was never marked down"
            await asyncio.sleep(0.5)

        started = time.monotonic()
        await admin.call("POST", f"{path}/actions", {"action": "evacuate"}, expect=(202,))
        view = await until(
            admin,
            path,
            lambda v: v["status"] == "ERROR" or (v["host"] == HOST_B and v["status"] == "RUNNING"),
        )
        assert (view["status"], view["host"]) == ("RUNNING", HOST_B), view
        rebuilt = time.monotonic()
        while not await asyncio.to_thread(pings, prober, address["ip"]):
            assert time.monotonic() - started < EVACUATED_WITHIN, "no answer from B in time"
        answered = time.monotonic()
        print(
            f"\nevacuation: request -> RUNNING on B {rebuilt - started:.1f} s, "
            f"-> answering ping {answered - started:.1f} s"
        )
        assert view["addresses"] == running["addresses"]
        history = await admin.call("GET", f"{path}/events")
        [fenced] = [e for e in history if e["type"] == "InstanceDisksFenced"]
        assert fenced["payload"]["images"] == [f"volume-{instance['id']}"], fenced

        # A's agent back: it removes the stale definition, never starts the guest again.
        await asyncio.to_thread(stack.restart, f"compute-{HOST_A}")
        deadline = time.monotonic() + 60
        while domain in await asyncio.to_thread(domains, lab.hosts[HOST_A]):
            assert time.monotonic() < deadline, "the stale domain stayed on A"
            await asyncio.sleep(0.5)
        assert domain in await asyncio.to_thread(domains, lab.hosts[HOST_B], active=True)
        assert await asyncio.to_thread(pings, prober, address["ip"])

    await tenant.call("DELETE", path)
    await until(tenant, path, lambda v: v is None or v["status"] == "DELETED")
    await tenant.call("DELETE", probe_path)
    await until(tenant, probe_path, lambda v: v is None)
    await tenant.call("DELETE", net_path)
    await until(tenant, net_path, lambda v: v is None)
    assert all(domain not in domains(host) for host in lab.hosts.values())
    deadline = time.monotonic() + 30
    while any(n.startswith(PREFIX) for h in lab.hosts for n in links(lab.netns[h])):
        assert time.monotonic() < deadline, "interfaces of the test left behind"
        await asyncio.sleep(0.5)
    pool = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
    assert f"volume-{instance['id']}" not in await ceph_pool.list()
