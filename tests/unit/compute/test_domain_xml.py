"""Domain XML built from an InstanceSpec, parsed back element by element."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET

import pytest

from virga_compute.core.spec import (
    CephMonitor,
    DirectKernelBoot,
    DiskSpec,
    FileSource,
    InstanceSpec,
    NicSpec,
    RbdSource,
)
from virga_compute.drivers import domain_xml
from virga_compute.drivers.domain_xml import METADATA_NS, DomainSettings, build_domain_xml

RBD_DISK = DiskSpec(
    target_dev="vda",
    source=RbdSource(
        pool="volumes",
        image="vol-1",
        monitors=(CephMonitor("127.0.0.1"), CephMonitor("10.0.0.2", 3300)),
        auth_user="virga",
        secret_uuid="5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10",
    ),
    serial="vol-1",
)
FILE_DISK = DiskSpec(target_dev="vdb", source=FileSource("/var/lib/virga/scratch.img"))
SPEC = InstanceSpec(
    instance_id="i-1",
    name='web <1> & "friends"\'',
    vcpus=2,
    ram_mb=512,
    disks=(RBD_DISK, FILE_DISK),
    nics=(
        NicSpec(mac="52:54:00:12:34:56", tap="tap-p1", bridge="br-int"),
        NicSpec(mac="52:54:00:12:34:57", tap="tap-p2"),
    ),
)


def parse(spec: InstanceSpec = SPEC, settings: DomainSettings | None = None) -> ET.Element:
    return ET.fromstring(build_domain_xml(spec, settings or DomainSettings()))


def one(root: ET.Element, path: str) -> ET.Element:
    found = root.findall(path)
    assert len(found) == 1, f"{path}: {len(found)} elements"
    return found[0]


def test_identity_and_size() -> None:
    root = parse()
    assert root.get("type") == "qemu"
    assert one(root, "name").text == "virga-i-1"
    assert one(root, "uuid").text == domain_xml.domain_uuid("i-1")
    assert one(root, "memory").attrib == {"unit": "MiB"}
    assert one(root, "memory").text == "512"
    assert one(root, "currentMemory").text == "512"
    assert one(root, "vcpu").text == "2"


@pytest.mark.parametrize("domain_type", ["qemu", "kvm", "test"])
def test_domain_type_is_configurable(domain_type: str) -> None:
    settings = DomainSettings(domain_type=domain_type)  # type: ignore[arg-type]
    assert parse(settings=settings).get("type") == domain_type


def test_uuid_is_the_instance_id_when_it_is_a_uuid() -> None:
    instance_id = "0b5f3f8e-6a51-4d1c-9a55-3c1e0b7f2d11"
    assert domain_xml.domain_uuid(instance_id) == instance_id


def test_uuid_is_derived_stably_from_other_ids() -> None:
    derived = domain_xml.domain_uuid("i-1")
    assert uuid.UUID(derived).version == 5
    assert derived == domain_xml.domain_uuid("i-1")
    assert derived != domain_xml.domain_uuid("i-2")
    # An upper-case UUID is a different instance id, so it must not collide with the lower.
    upper = "0B5F3F8E-6A51-4D1C-9A55-3C1E0B7F2D11"
    assert domain_xml.domain_uuid(upper) != upper.lower()


def test_metadata_holds_instance_id_and_escaped_name() -> None:
    instance = one(parse(), f"metadata/{{{METADATA_NS}}}instance")
    assert one(instance, f"{{{METADATA_NS}}}id").text == "i-1"
    assert one(instance, f"{{{METADATA_NS}}}name").text == SPEC.name


def test_metadata_is_read_back_as_libvirt_returns_it() -> None:
    # virDomainGetMetadata strips the namespace prefix.
    assert domain_xml.instance_id_from_metadata("<instance><id>i-9</id></instance>") == "i-9"
    namespaced = f'<v:instance xmlns:v="{METADATA_NS}"><v:id>i-9</v:id></v:instance>'
    assert domain_xml.instance_id_from_metadata(namespaced) == "i-9"
    assert domain_xml.instance_id_from_metadata("<instance/>") is None


def test_boots_from_disk_by_default() -> None:
    os_element = one(parse(), "os")
    assert one(os_element, "type").text == "hvm"
    assert one(os_element, "type").attrib == {"arch": "x86_64"}
    assert one(os_element, "boot").get("dev") == "hd"
    assert os_element.find("kernel") is None


def test_direct_kernel_boot() -> None:
    spec = InstanceSpec(
        instance_id="i-1",
        name="tiny",
        vcpus=1,
        ram_mb=128,
        boot=DirectKernelBoot("/boot/vmlinuz", "/boot/initrd.img", "console=ttyS0 quiet"),
    )
    os_element = one(parse(spec, DomainSettings(machine="q35")), "os")
    assert one(os_element, "type").get("machine") == "q35"
    assert one(os_element, "kernel").text == "/boot/vmlinuz"
    assert one(os_element, "initrd").text == "/boot/initrd.img"
    assert one(os_element, "cmdline").text == "console=ttyS0 quiet"
    assert os_element.find("boot") is None


def test_acpi_and_crash_behaviour() -> None:
    root = parse()
    assert root.find("features/acpi") is not None
    assert one(root, "on_crash").text == "destroy"
    assert one(root, "on_reboot").text == "restart"


def test_rbd_disk() -> None:
    disk = one(parse(), "devices/disk[@type='network']")
    assert disk.get("device") == "disk"
    assert one(disk, "driver").attrib == {
        "name": "qemu",
        "type": "raw",
        "cache": "writeback",
        "discard": "unmap",
    }
    source = one(disk, "source")
    assert source.get("protocol") == "rbd"
    assert source.get("name") == "volumes/vol-1"
    hosts = [(h.get("name"), h.get("port")) for h in source.findall("host")]
    assert hosts == [("127.0.0.1", "6789"), ("10.0.0.2", "3300")]
    assert one(disk, "auth").get("username") == "virga"
    assert one(disk, "auth/secret").attrib == {
        "type": "ceph",
        "uuid": "5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10",
    }
    assert one(disk, "target").attrib == {"dev": "vda", "bus": "virtio"}
    assert one(disk, "serial").text == "vol-1"


def test_rbd_disk_without_auth() -> None:
    source = RbdSource(pool="rbd", image="img", monitors=(CephMonitor("127.0.0.1"),))
    disk = ET.fromstring(domain_xml.disk_xml(DiskSpec("vdc", source)))
    assert disk.find("auth") is None
    assert disk.find("serial") is None


def test_file_disk() -> None:
    disk = one(parse(), "devices/disk[@type='file']")
    assert one(disk, "source").attrib == {"file": "/var/lib/virga/scratch.img"}
    assert one(disk, "target").attrib == {"dev": "vdb", "bus": "virtio"}


def test_bridge_interface() -> None:
    nic = one(parse(), "devices/interface[@type='bridge']")
    assert one(nic, "mac").get("address") == "52:54:00:12:34:56"
    assert one(nic, "source").attrib == {"bridge": "br-int"}
    assert one(nic, "target").attrib == {"dev": "tap-p1"}
    assert one(nic, "model").get("type") == "virtio"


def test_ethernet_interface_uses_the_agents_tap() -> None:
    nic = one(parse(), "devices/interface[@type='ethernet']")
    assert one(nic, "mac").get("address") == "52:54:00:12:34:57"
    assert one(nic, "target").attrib == {"dev": "tap-p2", "managed": "no"}
    assert nic.find("source") is None


def test_no_console_unless_a_log_dir_is_set() -> None:
    assert parse().find("devices/serial") is None


def test_serial_console_logged_to_file() -> None:
    root = parse(settings=DomainSettings(console_log_dir="/var/log/virga/"))
    serial = one(root, "devices/serial")
    assert serial.get("type") == "pty"
    assert one(serial, "log").attrib == {"file": "/var/log/virga/virga-i-1.log", "append": "on"}
    assert one(root, "devices/console/target").attrib == {"type": "serial", "port": "0"}


def test_disk_edits_round_trip() -> None:
    xml = build_domain_xml(SPEC, DomainSettings())
    assert domain_xml.parse_disks(xml) == {
        "vda": "rbd:volumes/vol-1",
        "vdb": "file:/var/lib/virga/scratch.img",
    }
    extra = DiskSpec("vdc", FileSource("/tmp/extra.img"))
    grown = domain_xml.with_disk(xml, extra)
    assert domain_xml.parse_disks(grown)["vdc"] == domain_xml.source_key(extra.source)
    found = domain_xml.find_disk_xml(grown, "vdc")
    assert found is not None
    assert ET.fromstring(found).find("source") is not None
    shrunk = domain_xml.without_disk(grown, "vda")
    assert sorted(domain_xml.parse_disks(shrunk)) == ["vdb", "vdc"]
    assert domain_xml.find_disk_xml(shrunk, "vda") is None


def test_interface_targets() -> None:
    assert domain_xml.interface_targets(build_domain_xml(SPEC, DomainSettings())) == [
        "tap-p1",
        "tap-p2",
    ]


def test_names() -> None:
    assert domain_xml.domain_name("i-1") == "virga-i-1"
    assert domain_xml.instance_id_from_name("virga-i-1") == "i-1"
    assert domain_xml.instance_id_from_name("virga-") is None
    assert domain_xml.instance_id_from_name("test") is None
