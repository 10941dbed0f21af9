"""A stock cloud image booted under plain libvirt (qemu:///system, TCG) with a config drive.

No control plane: a copy-on-write overlay of the image, an ISO labelled `config-2` (written by
`virga_guestdata`) carrying a fresh SSH key, user data and a static address, and one NIC on a
bridge whose other port is a veth into a namespace the caller owns. The guest is reached by
OpenSSH from that namespace. Everything made here is removed on exit, failure included; the
domain's name starts with `vsg-` (never `virga-`, which other tests' clean-ups collect).
"""

from __future__ import annotations

import secrets
import subprocess
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import libvirt

from virga_guestdata import GuestFacts, GuestNic, config_drive_files
from virga_guestdata.iso import write_iso

URI = "qemu:///system"
USER = "debian"
PEER_IP = "10.207.7.1"
GUEST_IP = "10.207.7.5"
MTU = 1450


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Segment:
    """A bridge for the guest's NIC, with a veth whose other end is in `namespace`."""

    bridge: str
    namespace: str


@contextmanager
def segment(prefix: str = "vsg") -> Iterator[Segment]:
    suffix = secrets.token_hex(3)
    bridge, veth, peer, namespace = (f"{prefix}{kind}{suffix}" for kind in ("br", "ve", "vp", "ns"))
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("link", "set", bridge, "up")
        _ip("netns", "add", namespace)
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("link", "add", veth, "type", "veth", "peer", "name", peer, "netns", namespace)
        _ip("link", "set", veth, "master", bridge, "mtu", str(MTU), "up")
        _ip("-n", namespace, "link", "set", peer, "mtu", str(MTU), "up")
        _ip("-n", namespace, "addr", "add", f"{PEER_IP}/24", "dev", peer)
        yield Segment(bridge, namespace)
    finally:
        for args in (("link", "del", veth), ("link", "del", bridge), ("netns", "del", namespace)):
            subprocess.run(["ip", *args], capture_output=True, timeout=30, check=False)


@dataclass(frozen=True)
class Guest:
    domain: libvirt.virDomain
    name: str
    hostname: str
    key: Path
    console: Path
    segment: Segment
    started: float
    """time.monotonic() just before the domain was started."""

    def ssh(self, command: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run `command` in the guest as `debian`, from the segment's namespace."""
        return subprocess.run(
            ["ip", "netns", "exec", self.segment.namespace, "ssh", "-i", str(self.key),
             "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
             "-o", "LogLevel=ERROR", f"{USER}@{GUEST_IP}", command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def wait_for_ssh(self, seconds: float) -> float:
        """Seconds from the domain's start to the first successful login; fails after
        `seconds` with the console's tail."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.ssh("true", timeout=30).returncode == 0:
                return time.monotonic() - self.started
            if not self.domain.isActive():
                break
            time.sleep(1.0)
        raise AssertionError(f"no SSH login after {seconds:.0f} s; console:\n{self.log()}")

    def agent_answers(self, seconds: float = 60.0) -> bool:
        """Whether qemu-guest-agent answers a guest-ping on its virtio channel."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ping = subprocess.run(
                ["virsh", "-c", URI, "qemu-agent-command", self.name, '{"execute":"guest-ping"}'],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            if ping.returncode == 0 and '"return"' in ping.stdout:
                return True
            time.sleep(1.0)
        return False

    def log(self, lines: int = 60) -> str:
        text = self.console.read_text(errors="replace") if self.console.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element


def domain_xml(name: str, disk: Path, drive: Path, bridge: str, mac: str, console: Path) -> str:
    root = ET.Element("domain", type="qemu")
    _sub(root, "name", name)
    _sub(root, "memory", "1024", unit="MiB")
    _sub(root, "vcpu", "1")
    os_element = _sub(root, "os")
    _sub(os_element, "type", "hvm", arch="x86_64", machine="pc")
    _sub(os_element, "boot", dev="hd")
    _sub(_sub(root, "features"), "acpi")
    _sub(root, "on_poweroff", "destroy")
    devices = _sub(root, "devices")
    vda = _sub(devices, "disk", type="file", device="disk")
    _sub(vda, "driver", name="qemu", type="qcow2")
    _sub(vda, "source", file=str(disk))
    _sub(vda, "target", dev="vda", bus="virtio")
    cdrom = _sub(devices, "disk", type="file", device="cdrom")
    _sub(cdrom, "driver", name="qemu", type="raw")
    _sub(cdrom, "source", file=str(drive))
    _sub(cdrom, "target", dev="hdc", bus="ide")
    _sub(cdrom, "readonly")
    nic = _sub(devices, "interface", type="bridge")
    _sub(nic, "source", bridge=bridge)
    _sub(nic, "mac", address=mac)
    _sub(nic, "model", type="virtio")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(console))
    _sub(serial, "target", port="0")
    agent = _sub(devices, "channel", type="unix")
    _sub(agent, "target", type="virtio", name="org.qemu.guest_agent.0")
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    return ET.tostring(root, encoding="unicode")


@contextmanager
def booted(image: Path, work: Path, seg: Segment, user_data: bytes) -> Iterator[Guest]:
    """Start the image with a config drive giving a fresh key, `user_data` and a static
    address on `seg`; destroy and undefine the domain on exit."""
    instance = str(uuid.uuid4())
    name, hostname = f"vsg-{instance[:8]}", f"stock-{instance[:6]}"
    key = work / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", str(key)], check=True
    )
    disk = work / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(image), str(disk)],
        check=True,
    )
    mac = "52:54:00:" + ":".join(f"{byte:02x}" for byte in secrets.token_bytes(3))
    nic = GuestNic(mac, (GUEST_IP,), f"{GUEST_IP}/24", PEER_IP, mtu=MTU)
    facts = GuestFacts(
        instance_id=instance,
        name=name,
        hostname=hostname,
        key_name="test",
        public_keys=(key.with_suffix(".pub").read_text(),),
        user_data=user_data,
        nic=nic,
    )
    files = config_drive_files(facts)
    drive = write_iso(files, work / "config-drive.iso")
    console = work / "console.log"
    connection = libvirt.open(URI)
    domain = connection.defineXML(domain_xml(name, disk, drive, seg.bridge, mac, console))
    try:
        started = time.monotonic()
        domain.create()
        yield Guest(domain, name, hostname, key, console, seg, started)
    finally:
        if domain.isActive():
            domain.destroy()
        domain.undefine()
        connection.close()
