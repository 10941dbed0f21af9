"""A tenant's path with a stock cloud image, entirely through the API (issue #16's acceptance):
Debian 12's genuine cloud image (built here from Debian packages) uploaded as the public image
`debian-12`; a tenant imports its SSH key as a keypair and asks for an instance of it with that
key and a user-data script, on a tenant network; the guest boots on qemu:///system (TCG) from a
Ceph volume, takes its address, router and MTU 1450 from the host's DHCP, and Debian's own
cloud-init reads the metadata service at 169.254.169.254. A namespace plugged into the network
as a port of its own then logs in as `debian` with the tenant's private key and sees its
hostname, the script's marker, its address, the MTU and the default route, and its own
meta_data.json. A second tenant's instance, booted beside it with a config drive on a network
without DHCP, still gets its own key and its address (configured statically, as the drive's
network_data.json says) and never the first's; the metadata service still answers it once it
routes 169.254.169.254 on-link. Deleting everything leaves no domain, RBD image or interface
behind.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import libvirt
import pytest
from tests.e2e.test_guest_ping import domains
from tests.support.api import Api, until
from tests.support.netns import links, namespaces, plug_guest, sh, unique
from tests.support.pool import audit_namespace
from tests.support.stack import HostSpec, Stack, on_ceph

from virga_compute.drivers.domain_xml import domain_name
from virga_devstack import stock_image
from virga_devstack.ceph import CephCluster
from virga_network.agent.core import names
from virga_storage.drivers.rbd import RbdDriver

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.e2e,
    pytest.mark.libvirt,
    pytest.mark.slow,
    pytest.mark.timeout(1800),
]

URI = "qemu:///system"
HOST = "login-host"
PREFIX = "vl4"
"""The network agent names every bridge, VXLAN, tap and edge of this test with it."""
BOOT_SECONDS = 600.0
"""Two TCG guests booting side by side on a busy 2-core machine: first SSH takes ~90 s alone."""
FLAVOR_NAME = "d1.login"
FLAVOR = {"name": FLAVOR_NAME, "vcpus": 1, "ram_mb": 1024, "disk_gb": 3}
"""Debian's image is 2 GiB virtual: m1.tiny's 1 GiB disk is too small, m1.small's RAM wasteful."""
USER_DATA = b'#!/bin/sh\necho "marker from $(hostname)" > /var/tmp/virga-marker\n'
METADATA = "http://169.254.169.254/openstack/latest/meta_data.json"


@pytest.fixture(scope="module")
def image() -> stock_image.StockImage:
    return stock_image.build(log=print)


@pytest.fixture(scope="module")
def stack(
    libvirtd: None,
    kafka_bootstrap: str,
    ceph_cluster: CephCluster,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("login"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        **on_ceph(ceph_cluster),
        network_agent_prefix=PREFIX,
        network_agent_edge=True,
    )
    try:
        with stack.running():
            yield stack
    finally:  # a failed test leaves no guest, interface or edge behind
        for instance_id in CREATED:
            remove_domain(domain_name(instance_id))
        for name in virga_links():
            sh("ip", "link", "del", name, check=False)
        for namespace in sh("ip", "netns", "list").stdout.split("\n"):
            if namespace.startswith(PREFIX) and namespace.split(" ")[0].endswith(f"-{HOST}"):
                sh("ip", "netns", "del", namespace.split(" ")[0], check=False)


CREATED: list[str] = []
"""The instances this module asked for: a failed test's guests are removed at its end."""


def remove_domain(name: str) -> None:
    connection = libvirt.open(URI)
    try:
        domain = connection.lookupByName(name)
        if domain.isActive():
            domain.destroy()
        domain.undefine()
    except libvirt.libvirtError:
        pass  # gone already: the test deleted it
    finally:
        connection.close()


def virga_links(prefix: str = PREFIX) -> set[str]:
    return {name for name in links("") if name.startswith(prefix)}


@dataclass
class Tenant:
    api: Api
    tenant_id: str
    key: Path
    """The private key; its public half is the tenant's keypair `mine`."""


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        yield Api(session, stack.gateway_url, stack.admin_token)


async def new_tenant(admin: Api, work: Path, name: str) -> Tenant:
    tenant_id, token = await admin.create_tenant(f"{name}-{uuid.uuid4().hex[:6]}")
    tenant = Tenant(admin.as_token(token), tenant_id, work / f"{name}_ed25519")
    await asyncio.to_thread(
        subprocess.run,
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(tenant.key)],
        check=True,
    )
    public_key = tenant.key.with_suffix(".pub").read_text()
    await tenant.api.call("POST", "/v1/keypairs", {"name": "mine", "public_key": public_key})
    return tenant


async def upload(admin: Api, disk: Path) -> Any:
    with disk.open("rb") as data:
        async with admin.session.post(
            f"{admin.base_url}/v1/images",
            params={"name": "debian-12", "visibility": "public", "disk_format": "qcow2"},
            data=data,
            headers={
                "Authorization": f"Bearer {admin.token}",
                "Content-Type": "application/octet-stream",
            },
        ) as response:
            body = await response.json()
            assert response.status == 201, body
            return body


@dataclass
class Seat:
    """A tenant's network with a port of its own plugged into a namespace: where the tenant
    sits to log into its guests."""

    network: dict[str, Any]
    port: dict[str, Any]
    namespace: str


async def seat(
    admin: Api,
    tenant: Tenant,
    name: str,
    cidr: str,
    namespace: str,
    prefix: str = PREFIX,
    *,
    dhcp: bool = True,
) -> Seat:
    body = {"name": name, "cidr": cidr, "dhcp": dhcp}
    network = await tenant.api.call("POST", "/v1/networks", body)
    network = await until(
        tenant.api, f"/v1/networks/{network['id']}", lambda v: v["status"] == "ACTIVE"
    )
    port = await admin.call(
        "POST",
        "/v1/ports",
        {"network_id": network["id"], "host": HOST, "tenant_id": tenant.tenant_id},
    )
    port = await until(tenant.api, f"/v1/ports/{port['id']}", lambda v: v["status"] == "ACTIVE")
    peer = names.veth_peer(names.tap_name(port["id"], prefix))
    plug_guest("", peer, namespace, port["mac"], port["ips"])
    return Seat(network, port, namespace)


def ssh(
    tenant: Tenant, namespace: str, ip: str, command: str, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run `command` in the guest at `ip` as `debian` with the tenant's key, from `namespace`."""
    return subprocess.run(
        ["ip", "netns", "exec", namespace, "ssh", "-i", str(tenant.key), "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR", f"debian@{ip}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


async def logged_in(tenant: Tenant, namespace: str, ip: str, started: float) -> float:
    """Seconds from `started` to the first successful login."""
    deadline = started + BOOT_SECONDS
    while True:
        login = await asyncio.to_thread(ssh, tenant, namespace, ip, "true", 30.0)
        if login.returncode == 0:
            return time.monotonic() - started
        assert time.monotonic() < deadline, f"no login to {ip}: {login.stderr}"
        await asyncio.sleep(2)


async def guest_facts(tenant: Tenant, namespace: str, ip: str) -> dict[str, str]:
    """What the guest says of itself once cloud-init is done."""
    done = await asyncio.to_thread(
        ssh, tenant, namespace, ip, "cloud-init status --wait", BOOT_SECONDS
    )
    assert "status: done" in done.stdout, done.stdout + done.stderr
    commands = {
        "hostname": "hostname",
        "marker": "cat /var/tmp/virga-marker 2>/dev/null",
        "addresses": "ip -o -4 addr show scope global",
        "links": "ip -o link show",
        "route": "ip route show default",
        "metadata": f"curl -sf --max-time 10 {METADATA}",
        "keys": "cat ~/.ssh/authorized_keys",
        "root": "sudo -n id -u",
        "identity": "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub",
    }
    facts = {}
    for fact, command in commands.items():
        facts[fact] = (await asyncio.to_thread(ssh, tenant, namespace, ip, command)).stdout
    return facts


async def test_a_tenant_logs_into_a_stock_image_with_its_key_and_user_data(
    stack: Stack,
    admin: Api,
    image: stock_image.StockImage,
    ceph_pool: RbdDriver,
    tmp_path: Path,
) -> None:
    uploaded = await upload(admin, image.disk)
    await admin.call("POST", "/v1/flavors", FLAVOR)
    first = await new_tenant(admin, tmp_path, "first")
    second = await new_tenant(admin, tmp_path, "second")
    with namespaces([unique(PREFIX), unique(PREFIX)]) as [first_ns, second_ns]:
        first_seat = await seat(admin, first, "first", "10.78.0.0/24", first_ns)
        second_seat = await seat(admin, second, "second", "10.79.0.0/24", second_ns, dhcp=False)
        assert second_seat.network["dhcp"] is False
        started = time.monotonic()
        web = await first.api.create_instance(
            "Web_Front.1",
            flavor=FLAVOR_NAME,
            image=uploaded["id"],
            network_id=first_seat.network["id"],
            key_name="mine",
            user_data=base64.b64encode(USER_DATA).decode(),
        )
        CREATED.append(web["id"])
        other = await second.api.create_instance(
            "other",
            flavor=FLAVOR_NAME,
            image=uploaded["id"],
            network_id=second_seat.network["id"],
            key_name="mine",
            config_drive=True,
        )
        CREATED.append(other["id"])
        running = {}
        for tenant, instance in ((first, web), (second, other)):
            path = f"/v1/instances/{instance['id']}"
            view = await until(
                tenant.api, path, lambda v: v["status"] in {"RUNNING", "ERROR"}, BOOT_SECONDS
            )
            assert view["status"] == "RUNNING", view
            [address] = view["addresses"]
            running[instance["id"]] = address["ip"]
        web_ip, other_ip = running[web["id"]], running[other["id"]]

        seconds = await logged_in(first, first_ns, web_ip, started)
        print(f"POST /v1/instances → first SSH login: {seconds:.1f} s")
        facts = await guest_facts(first, first_ns, web_ip)
        assert facts["hostname"].strip() == "web-front-1", facts
        assert facts["marker"].strip() == "marker from web-front-1", facts
        assert f"inet {web_ip}/24" in facts["addresses"], facts
        assert "mtu 1450" in facts["links"], facts
        gateway = first_seat.network["gateway_ip"]
        assert f"via {gateway}" in facts["route"], facts
        metadata = json.loads(facts["metadata"])
        assert metadata["uuid"] == web["id"]
        assert list(metadata["public_keys"].values()) == [
            first.key.with_suffix(".pub").read_text().strip()
        ]
        assert facts["root"].strip() == "0", facts  # debian may sudo, as on Debian's images
        # Two instances of one image never share a machine id or SSH host key.
        assert len(facts["identity"].split()[0]) == 32, facts
        # The first tenant's key opens only its own guest.
        refused = await asyncio.to_thread(ssh, first, second_ns, other_ip, "true", 30.0)
        assert refused.returncode != 0

        await logged_in(second, second_ns, other_ip, started)
        others = await guest_facts(second, second_ns, other_ip)
        assert others["hostname"].strip() == "other", others
        assert others["marker"] == "", others  # no user data was given
        # No DHCP on its network: its address and route are the config drive's, static.
        assert f"inet {other_ip}/24" in others["addresses"], others
        assert "dynamic" not in others["addresses"], others
        assert f"via {second_seat.network['gateway_ip']}" in others["route"], others
        # The edge still serves its metadata (a static configuration has no route to it: a
        # guest that routes 169.254.169.254 on-link, as DHCP's option 121 would, reaches it).
        reach = (
            "dev=$(ip -o -4 route show default | awk '{print $5}') && "
            "sudo -n ip route replace 169.254.169.254 dev $dev && "
            f"curl -sf --max-time 10 {METADATA}"
        )
        metadata = await asyncio.to_thread(ssh, second, second_ns, other_ip, reach)
        assert json.loads(metadata.stdout)["uuid"] == other["id"], metadata.stderr
        mine, theirs = facts["identity"].split(), others["identity"].split()
        assert mine[0] != theirs[0]  # machine id
        assert mine[2] != theirs[2]  # SSH host key
        assert first.key.with_suffix(".pub").read_text().split()[1] not in others["keys"]
        drive = await asyncio.to_thread(
            ssh, second, second_ns, other_ip, "sudo blkid -t LABEL=config-2 -o device"
        )
        assert drive.stdout.strip(), "the config drive is not attached"

    for tenant, instance in ((first, web), (second, other)):
        path = f"/v1/instances/{instance['id']}"
        await tenant.api.call("DELETE", path)
        await until(tenant.api, path, lambda v: v is None or v["status"] == "DELETED")
    for tenant, place in ((first, first_seat), (second, second_seat)):
        await tenant.api.call("DELETE", f"/v1/ports/{place.port['id']}")
        await until(tenant.api, f"/v1/ports/{place.port['id']}", lambda v: v is None)
        await tenant.api.call("DELETE", f"/v1/networks/{place.network['id']}")
        await until(tenant.api, f"/v1/networks/{place.network['id']}", lambda v: v is None)
    assert not {domain_name(web["id"]), domain_name(other["id"])} & domains()
    deadline = time.monotonic() + 30
    while virga_links():  # the agent converges on the log: no tap, bridge, VXLAN or edge
        assert time.monotonic() < deadline, virga_links()
        await asyncio.sleep(0.5)
    pool = await audit_namespace(stack.bootstrap, stack.namespace, ceph_pool, shared=True)
    assert pool.clean, pool
