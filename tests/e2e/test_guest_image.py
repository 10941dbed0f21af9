"""Virga's guest image boots on qemu:///system (TCG), takes its address from fw_cfg, answers ping.

Each test builds (or finds cached) the image, wires a tap into a bridge with a veth to a
network namespace of its own, defines the domain with the compute agent's own XML builder
plus `guest_network.sysinfo_xml`, and pings the guest from that namespace: once from the
raw disk as a file, once from an RBD image in the local Ceph cluster (the boot volume case).
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from virga_compute.core.spec import (
    CephMonitor,
    DiskSpec,
    FileSource,
    InstanceSpec,
    NicSpec,
    RbdSource,
)
from virga_compute.drivers.domain_xml import DomainSettings, build_domain_xml, console_log_path
from virga_compute.drivers.guest_network import sysinfo_element
from virga_devstack import guest_image
from virga_devstack.ceph import CephCluster

pytestmark = [pytest.mark.e2e, pytest.mark.libvirt]

URI = "qemu:///system"
PREFIX = "vh6"
"""Every bridge, tap, veth and namespace these tests make starts with it."""
GUEST_IP = "10.206.6.5"
PEER_IP = "10.206.6.1"
BOOT_SECONDS = 60.0


@pytest.fixture(scope="module")
def image() -> guest_image.GuestImage:
    return guest_image.build()


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Segment:
    """A bridge holding the guest's tap and a veth whose other end is in `namespace`."""

    tap: str
    namespace: str


@pytest.fixture
def segment() -> Iterator[Segment]:
    suffix = secrets.token_hex(3)
    bridge, tap, veth, peer, namespace = (
        f"{PREFIX}br{suffix}", f"{PREFIX}tp{suffix}", f"{PREFIX}ve{suffix}",
        f"{PREFIX}vp{suffix}", f"{PREFIX}ns{suffix}",
    )  # fmt: skip
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        _ip("tuntap", "add", "dev", tap, "mode", "tap")
        _ip("link", "set", tap, "master", bridge, "up")
        _ip("netns", "add", namespace)
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer, "netns", namespace)
        _ip("link", "set", veth, "master", bridge, "up")
        _ip("-n", namespace, "link", "set", peer, "up")
        _ip("-n", namespace, "addr", "add", f"{PEER_IP}/24", "dev", peer)
        yield Segment(tap, namespace)
    finally:
        for args in (("link", "del", tap), ("link", "del", veth), ("link", "del", bridge),
                     ("netns", "del", namespace)):  # fmt: skip
            subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)


def domain_xml(disk: DiskSpec, segment: Segment, console_dir: Path) -> tuple[str, str]:
    """(domain name, definition): the compute agent's XML with the address in fw_cfg."""
    instance_id = f"{PREFIX}-{uuid.uuid4().hex[:8]}"
    mac = "52:54:00:06:06:05"
    spec = InstanceSpec(
        instance_id, "guest-image", vcpus=1, ram_mb=256, disks=(disk,),
        nics=(NicSpec(mac, segment.tap),),
    )  # fmt: skip
    settings = DomainSettings(domain_type="qemu", console_log_dir=str(console_dir))
    root = ET.fromstring(build_domain_xml(spec, settings))
    root.append(sysinfo_element(GUEST_IP, 24, PEER_IP, mac=mac))
    console_path = console_log_path(settings, instance_id)
    assert console_path is not None
    return console_path, ET.tostring(root, encoding="unicode")


def wait_for_console(path: Path, line: str, seconds: float) -> float:
    """Seconds until `line` shows up in the serial console log; fails with the log if never."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if path.exists() and line in path.read_text(errors="replace"):
            return time.monotonic() - began
        time.sleep(0.2)
    log = path.read_text(errors="replace") if path.exists() else "(no console log)"
    pytest.fail(f"{line!r} not on the console after {seconds:.0f} s:\n{log[-3000:]}")


def ping(namespace: str, address: str, attempts: int = 10) -> bool:
    for _ in range(attempts):
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, "ping", "-c", "1", "-W", "1", address],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            return True
    return False


def boot_and_ping(disk: DiskSpec, segment: Segment, console_dir: Path) -> libvirt.virDomain:
    """Define and start the domain, wait for the guest's ready line, ping it; returns it."""
    console, xml = domain_xml(disk, segment, console_dir)
    connection = libvirt.open(URI)
    domain = connection.defineXML(xml)
    try:
        # Before the boot: no answer at that address (no stale guest makes the test pass).
        assert not ping(segment.namespace, GUEST_IP, attempts=1)
        domain.create()
        wait_for_console(Path(console), f"{guest_image.READY_PREFIX} {GUEST_IP}", BOOT_SECONDS)
        assert ping(segment.namespace, GUEST_IP), "the guest does not answer ping"
        return domain
    except BaseException:
        remove(domain)
        raise


def remove(domain: libvirt.virDomain) -> None:
    if domain.isActive():
        domain.destroy()
    domain.undefine()


def test_the_image_boots_from_a_raw_disk_answers_ping_and_powers_off_on_acpi(
    libvirtd: None, image: guest_image.GuestImage, segment: Segment, tmp_path: Path
) -> None:
    disk = tmp_path / "boot.raw"
    subprocess.run(["cp", "--sparse=always", str(image.disk), str(disk)], check=True)
    domain = boot_and_ping(DiskSpec("vda", FileSource(str(disk))), segment, tmp_path)
    try:
        domain.shutdown()  # the ACPI power button: what a graceful stop sends
        deadline = time.monotonic() + 30
        while domain.isActive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not domain.isActive(), "the guest ignored the ACPI power button"
    finally:
        remove(domain)
    connection = libvirt.open(URI)
    assert domain.name() not in {d.name() for d in connection.listAllDomains()}


def _admin_key(cluster: CephCluster) -> bytes:
    for line in cluster.keyring.read_text().splitlines():
        if line.strip().startswith("key"):
            return base64.b64decode(line.split("=", 1)[1].strip())
    raise AssertionError(f"no key in {cluster.keyring}")


@pytest.fixture
def ceph_secret(libvirtd: None, ceph_cluster: CephCluster) -> Iterator[str]:
    """A libvirt secret holding client.admin's key, so QEMU can open rbd: disks."""
    connection = libvirt.open(URI)
    secret = connection.secretDefineXML(
        f"<secret ephemeral='no' private='yes'><usage type='ceph'>"
        f"<name>{PREFIX}-{uuid.uuid4().hex[:8]} client.admin</name></usage></secret>"
    )
    try:
        secret.setValue(_admin_key(ceph_cluster))
        yield secret.UUIDString()
    finally:
        secret.undefine()


def _rbd(cluster: CephCluster, *args: str) -> None:
    subprocess.run(
        ["rbd", "-c", str(cluster.conf_file), *args], check=True, capture_output=True, timeout=120
    )


def test_the_image_boots_from_an_rbd_image_in_ceph_and_answers_ping(
    image: guest_image.GuestImage,
    ceph_cluster: CephCluster,
    ceph_secret: str,
    segment: Segment,
    tmp_path: Path,
) -> None:
    name = f"{PREFIX}-guest-{uuid.uuid4().hex[:8]}"
    _rbd(
        ceph_cluster,
        "import",
        "--image-format",
        "2",
        str(image.disk),
        f"{ceph_cluster.pool}/{name}",
    )
    try:
        source = RbdSource(
            ceph_cluster.pool, name, (CephMonitor(ceph_cluster.host, ceph_cluster.port),),
            auth_user="admin", secret_uuid=ceph_secret,
        )  # fmt: skip
        domain = boot_and_ping(DiskSpec("vda", source), segment, tmp_path)
        remove(domain)
    finally:
        _rbd(ceph_cluster, "rm", "--no-progress", f"{ceph_cluster.pool}/{name}")
