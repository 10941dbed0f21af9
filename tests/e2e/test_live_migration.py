"""A guest live-migrates through the API between two real libvirt hosts and keeps answering
ping: the whole stack as processes on the test broker and Ceph (gateway, scheduler, storage,
network controller), and on each of two libvirtd hosts of this test (`libvirt_hosts`: own
namespaces, joined through a hub) its compute agent and its network agent.

Virga's guest image boots on host A (host B disabled meanwhile) from its RBD volume with a
port on a tenant network; a probe namespace, a port of its own on host A, pings it every 50 ms.
`POST /v1/instances/{id}/migrate` moves it to B (the scheduler picks the only other host) and
back (`host` named): each time it is RUNNING on the other host, its uptime kept growing (no
reboot), and the ping gap and the pings lost are measured and printed next to the bare
migration's wall time the agent reported (InstanceMigrated.seconds); the guest must answer
again soon after it is RUNNING there; a move away from the probe's host keeps its longest gap
under a second (the network follows the guest at its first frame on the destination), and
the events that move its port are printed as seconds from InstanceMigrated. Deleting
everything leaves no domain on either host, no RBD image and no interface of the test in
either host's namespace.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from typing import cast

import pytest
from tests.support.api import Api, upload_image
from tests.support.api import until as until_within
from tests.support.kafka import read_events
from tests.support.migration_lab import guest_uptime
from tests.support.migration_stack import (
    MigrationStack,
    PingWatch,
    domains,
    lab_clients,
    two_host_lab,
)
from tests.support.netns import links, namespaces, pings, plug_guest, unique
from tests.support.pool import audit_namespace

from virga_devstack import guest_image
from virga_devstack.ceph import CephCluster
from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_events.catalog.compute import InstanceMigrated
from virga_network.agent.core import names
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(1200)]

until = functools.partial(until_within, seconds=180, every=0.2)
"""This module's wait: at most 180 s, polled every 0.2 s."""

HOST_A, HOST_B = "mig-a", "mig-b"
PREFIX = "vl2"
"""The network agents name every bridge, VXLAN and tap of this test with it."""
BACK_WITHIN = 10.0
"""The guest answers ping again within this many seconds of being RUNNING on the other host."""


@pytest.fixture(scope="module")
def image() -> guest_image.GuestImage:
    return guest_image.build()


@pytest.fixture(scope="module")
def lab(
    kafka_bootstrap: str, ceph_cluster: CephCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MigrationStack]:
    run_dir = tmp_path_factory.mktemp("migration")
    with two_host_lab(kafka_bootstrap, ceph_cluster, run_dir, (HOST_A, HOST_B), PREFIX) as lab:
        yield lab


@pytest.fixture
async def clients(lab: MigrationStack) -> AsyncIterator[tuple[Api, Api, str]]:
    """(admin, tenant, tenant id)."""
    async with lab_clients(lab, "mig") as clients:
        yield clients


def virga_links(lab: MigrationStack, host: str) -> set[str]:
    return {name for name in links(lab.netns[host]) if name.startswith(PREFIX)}


async def migrated_event(
    lab: MigrationStack, instance_id: str, flow_id: str
) -> Envelope[InstanceMigrated]:
    topic = event_topic("compute", lab.stack.namespace)
    deadline = time.monotonic() + 30
    while True:
        for event in await read_events(lab.stack.bootstrap, topic, REGISTRY):
            payload = event.payload
            mine = event.aggregate_id == instance_id
            if isinstance(payload, InstanceMigrated) and mine and payload.flow_id == flow_id:
                return cast(Envelope[InstanceMigrated], event)
        assert time.monotonic() < deadline, f"no InstanceMigrated of flow {flow_id}"
        await asyncio.sleep(0.5)


TIMELINE = {"MigrationPortActivated", "MigrationPortSwitchRequested", "PortHostAssigned",
            "PortBound", "PortUnbound", "MigrationPortSwitched"}  # fmt: skip
"""The events that move a guest's network, printed in `timeline`."""
GAP_AWAY_WITHIN = 1.0
"""The longest ping gap of a move away from the probe's host (host A) is under this many
seconds: the network follows the guest at its first frame on the destination (issue 19; it
was ~2 s when it followed only the flow's switch, after InstanceMigrated)."""


async def timeline(
    lab: MigrationStack, instance_id: str, zero: float, since: float, until: float
) -> str:
    """When each event that moves the instance's port came between `since` and `until` (wall
    times), as seconds after `zero` (InstanceMigrated): where the ping gap goes."""
    ports: set[str] = set()
    found: list[tuple[float, str]] = []
    for service in ("scheduler", "network"):
        topic = event_topic(service, lab.stack.namespace)
        for event in await read_events(lab.stack.bootstrap, topic, REGISTRY):
            payload, at = event.payload, event.occurred_at.timestamp()
            if getattr(payload, "instance_id", None) == instance_id:
                ports.add(event.aggregate_id)
            name = type(payload).__name__
            mine = event.aggregate_id == instance_id or event.aggregate_id in ports
            if name in TIMELINE and mine and since <= at <= until:
                found.append((at - zero, f"{name}({getattr(payload, 'host', '')})"))
    return ", ".join(f"{name} {offset:+.3f}" for offset, name in sorted(found))


async def move(
    lab: MigrationStack,
    admin: Api,
    instance_id: str,
    watch: PingWatch,
    source: str,
    destination: str,
    body: dict[str, str],
) -> None:
    """Migrate the instance from `source` to `destination` through the API, measuring."""
    path = f"/v1/instances/{instance_id}"
    before = await asyncio.to_thread(guest_uptime, lab.hosts[source].uri, instance_id)
    started = time.time()
    asked = await admin.call("POST", f"{path}/migrate", body, expect=(202,))
    flow_id = asked["flow_id"]
    view = await until(admin, path, lambda v: v["status"] != "RUNNING" or v["host"] != source)
    view = await until(admin, path, lambda v: v["status"] in {"RUNNING", "ERROR"})
    running = time.time()
    assert (view["status"], view["host"]) == ("RUNNING", destination), view
    deadline = time.monotonic() + BACK_WITHIN
    while not watch.answered_after(running):
        assert time.monotonic() < deadline, f"no ping answered within {BACK_WITHIN} s of RUNNING"
        await asyncio.sleep(0.05)
    answered = time.time()
    await asyncio.sleep(1.0)  # some answers after, so the window closes on steady replies
    began, gap, lost = watch.window(started, time.time())
    reported = await migrated_event(lab, instance_id, flow_id)
    migrated, reported_at = reported.payload, reported.occurred_at.timestamp()
    after = await asyncio.to_thread(guest_uptime, lab.hosts[destination].uri, instance_id)
    steps = await timeline(lab, instance_id, reported_at, began - 1, reported_at + 3)
    print(
        f"\n{source} -> {destination}: API request -> RUNNING {running - started:.3f} s; "
        f"bare migration (InstanceMigrated.seconds) {migrated.seconds:.3f} s, "
        f"downtime {migrated.downtime_ms} ms; longest ping gap {gap:.3f} s, "
        f"{lost} pings lost (every {watch.interval} s), from {began - reported_at:+.3f} s to "
        f"{began + gap - reported_at:+.3f} s of InstanceMigrated; answered again "
        f"{answered - running:+.3f} s after RUNNING; uptime {before:.2f} -> {after:.2f} s\n"
        f"  from InstanceMigrated: gap from {began - reported_at:+.3f} s; {steps}; "
        f"first reply {began + gap - reported_at:+.3f} s"
    )
    assert after > before  # the same guest ran on: never rebooted
    assert migrated.destination == destination
    assert gap < migrated.seconds + BACK_WITHIN, (gap, migrated.seconds)
    if destination == HOST_B:  # away from the probe: the network had to follow the guest
        assert gap < GAP_AWAY_WITHIN, (gap, steps)
    assert f"virga-{instance_id}" in domains(lab.hosts[destination])
    assert f"virga-{instance_id}" not in domains(lab.hosts[source])


async def test_a_guest_migrates_live_there_and_back_answering_ping_and_leaves_nothing(
    lab: MigrationStack,
    clients: tuple[Api, Api, str],
    image: guest_image.GuestImage,
    ceph_pool: RbdDriver,
) -> None:
    admin, tenant, tenant_id = clients
    uploaded = await upload_image(admin, image.disk)
    network = await tenant.call("POST", "/v1/networks", {"name": "mig", "cidr": "10.78.0.0/24"})
    net_path = f"/v1/networks/{network['id']}"
    await until(tenant, net_path, lambda v: v["status"] == "ACTIVE")
    probe = await admin.call(
        "POST", "/v1/ports", {"network_id": network["id"], "host": HOST_A, "tenant_id": tenant_id}
    )
    probe_path = f"/v1/ports/{probe['id']}"
    probe = await until(tenant, probe_path, lambda v: v["status"] == "ACTIVE")

    # Booted on A: B takes no new instance meanwhile.
    disable = {"action": "disable", "reason": "boot on A"}
    await admin.call("POST", f"/v1/hosts/{HOST_B}/actions", disable, expect=(202, 200))
    instance = await tenant.create_instance(
        "mover", image=uploaded["id"], network=network["id"], flavor="m1.tiny"
    )
    instance_path = f"/v1/instances/{instance['id']}"
    running = await until(admin, instance_path, lambda v: v["status"] in {"RUNNING", "ERROR"})
    assert running["status"] == "RUNNING", running
    # The scheduler may have placed it before it saw B disabled: then it moves B -> A -> B.
    first = running["host"]
    [other] = {HOST_A, HOST_B} - {first}
    enable = {"action": "enable"}
    await admin.call("POST", f"/v1/hosts/{HOST_B}/actions", enable, expect=(202, 200))
    [address] = running["addresses"]

    with namespaces([unique(PREFIX)]) as [prober]:
        peer = names.veth_peer(names.tap_name(probe["id"], PREFIX))
        plug_guest(lab.netns[HOST_A], peer, prober, probe["mac"], probe["ips"])
        deadline = time.monotonic() + 180  # the guest boots under TCG
        while not await asyncio.to_thread(pings, prober, address["ip"]):
            assert time.monotonic() < deadline, f"{address['ip']} never answered"
        watch = PingWatch(prober, address["ip"])
        try:
            await move(lab, admin, instance["id"], watch, first, other, {})
            await move(lab, admin, instance["id"], watch, other, first, {"host": first})
        finally:
            watch.stop()
        # The same address and MAC all along.
        view = await admin.call("GET", instance_path)
        assert view["addresses"] == running["addresses"]

    await tenant.call("DELETE", instance_path)
    await until(tenant, instance_path, lambda v: v is None or v["status"] == "DELETED")
    await tenant.call("DELETE", probe_path)
    await until(tenant, probe_path, lambda v: v is None)
    await tenant.call("DELETE", net_path)
    await until(tenant, net_path, lambda v: v is None)
    assert (await tenant.call("GET", "/v1/ports"))["items"] == []

    domain = f"virga-{instance['id']}"
    assert all(domain not in domains(host) for host in lab.hosts.values())
    deadline = time.monotonic() + 30
    while any(virga_links(lab, host) for host in lab.hosts):  # no tap, bridge or VXLAN
        assert time.monotonic() < deadline, {h: virga_links(lab, h) for h in lab.hosts}
        await asyncio.sleep(0.5)
    pool = await audit_namespace(lab.stack.bootstrap, lab.stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
    assert f"volume-{instance['id']}" not in await ceph_pool.list()
