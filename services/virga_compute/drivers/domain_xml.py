"""Pure translation between Virga's instance specs and libvirt domain XML, both ways.

XML is always built and read with ElementTree, never by string formatting, so a user's
instance name cannot smuggle markup into a domain definition.
"""

from __future__ import annotations

import ipaddress
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from virga_compute.config import DomainType
from virga_compute.core.spec import DiskSpec, FileSource, InstanceSpec, NicSpec, RbdSource
from virga_compute.drivers.guest_network import sysinfo_element

DOMAIN_NAME_PREFIX = "virga-"
METADATA_NS = "urn:x-virga:libvirt:domain:1"
"""Namespace of the <metadata> element that marks a domain as Virga's."""
METADATA_PREFIX = "virga"
# uuid5 namespace for instance ids that are not UUIDs themselves; fixed forever, since
# changing it would give existing instances new domain UUIDs.
_UUID_NAMESPACE = uuid.UUID("6b1d4c1e-8f0a-5a43-9b7e-2f6d0c3a9e51")

ET.register_namespace(METADATA_PREFIX, METADATA_NS)


@dataclass(frozen=True, slots=True)
class DomainSettings:
    """Host-level choices that shape every domain, set once per compute agent."""

    domain_type: DomainType = "qemu"
    """'qemu' is TCG emulation (works where nested KVM hangs), 'kvm' hardware
    virtualisation, 'test' libvirt's in-process test driver."""
    arch: str = "x86_64"
    """Guest architecture."""
    machine: str | None = None
    """QEMU machine type (e.g. 'q35'); None lets libvirt choose its default."""
    console_log_dir: str | None = None
    """Directory for serial console logs (<dir>/virga-<id>.log); None for no console log."""
    config_drive_dir: str | None = None
    """Directory of config drive images (<dir>/virga-<id>.iso); needed by instances with a
    config drive (the libvirt driver sets it)."""


def domain_name(instance_id: str) -> str:
    """The libvirt domain name of an instance."""
    return DOMAIN_NAME_PREFIX + instance_id


def instance_id_from_name(name: str) -> str | None:
    """The instance id a domain name claims, or None for a name Virga never makes."""
    if name.startswith(DOMAIN_NAME_PREFIX) and len(name) > len(DOMAIN_NAME_PREFIX):
        return name[len(DOMAIN_NAME_PREFIX) :]
    return None


def domain_uuid(instance_id: str) -> str:
    """The domain UUID: the instance id itself when it is a canonical UUID, else derived
    from it, so a redefinition after a crash reuses the same UUID."""
    try:
        canonical: str | None = str(uuid.UUID(instance_id))
    except ValueError:
        canonical = None
    # Only the canonical spelling is taken as is: 'ABC…' and 'abc…' are different instance
    # ids and must not share a domain UUID.
    if canonical == instance_id:
        return instance_id
    return str(uuid.uuid5(_UUID_NAMESPACE, instance_id))


def console_log_path(settings: DomainSettings, instance_id: str) -> str | None:
    """Where the serial console of an instance is logged, if anywhere."""
    if settings.console_log_dir is None:
        return None
    return f"{settings.console_log_dir.rstrip('/')}/{domain_name(instance_id)}.log"


SMBIOS_PRODUCT = "OpenStack Nova"
"""SMBIOS system product and chassis asset tag of every domain: cloud-init's ds-identify
enables the OpenStack datasource (metadata service, config drive) only on this product."""
CONFIG_DRIVE_TARGETS = {"ide": "hdc", "sata": "sda"}
"""The config drive's CD-ROM, apart from the volumes' virtio targets: on IDE (the i440fx
`pc` machine; Debian's cloud kernel has no AHCI driver, so a SATA CD-ROM was invisible to its
guests), on SATA where there is no IDE (q35), as Nova chooses its CD-ROM bus."""


def cdrom_bus(machine: str | None) -> str:
    return "sata" if machine is not None and "q35" in machine else "ide"


def config_drive_path(settings: DomainSettings, instance_id: str) -> str | None:
    """Where the config drive image of an instance is written, if anywhere."""
    if settings.config_drive_dir is None:
        return None
    return f"{settings.config_drive_dir.rstrip('/')}/{domain_name(instance_id)}.iso"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def disk_element(disk: DiskSpec) -> ET.Element:
    """The <disk> element of one disk, as used in a definition and for hot-plug."""
    source = disk.source
    if isinstance(source, RbdSource):
        element = ET.Element("disk", {"type": "network", "device": "disk"})
        # writeback is safe with RBD because librbd's cache honours guest flushes, and it
        # is much faster than writethrough; discard lets deleted guest blocks shrink the image.
        _sub(element, "driver", name="qemu", type="raw", cache="writeback", discard="unmap")
        if source.auth_user is not None and source.secret_uuid is not None:
            auth = _sub(element, "auth", username=source.auth_user)
            _sub(auth, "secret", type="ceph", uuid=source.secret_uuid)
        src = _sub(element, "source", protocol="rbd", name=f"{source.pool}/{source.image}")
        for monitor in source.monitors:
            _sub(src, "host", name=monitor.host, port=str(monitor.port))
    else:
        element = ET.Element("disk", {"type": "file", "device": "disk"})
        _sub(element, "driver", name="qemu", type="raw")
        _sub(element, "source", file=source.path)
    _sub(element, "target", dev=disk.target_dev, bus="virtio")
    if disk.serial is not None:
        _sub(element, "serial", disk.serial)
    return element


def disk_xml(disk: DiskSpec) -> str:
    """The <disk> element of one disk as a string."""
    return ET.tostring(disk_element(disk), encoding="unicode")


def smbios_element(instance_id: str) -> ET.Element:
    """`<sysinfo type='smbios'>`: the guest's DMI tables name it an OpenStack Nova virtual
    machine whose serial and UUID are the domain's UUID, as Nova's guests are."""
    sysinfo = ET.Element("sysinfo", {"type": "smbios"})
    system = _sub(sysinfo, "system")
    uuid_text = domain_uuid(instance_id)
    for name, value in (
        ("manufacturer", "Virga"),
        ("product", SMBIOS_PRODUCT),
        ("serial", uuid_text),
        ("uuid", uuid_text),
        ("family", "Virtual Machine"),
    ):
        _sub(system, "entry", value, name=name)
    chassis = _sub(sysinfo, "chassis")
    _sub(chassis, "entry", "Virga", name="manufacturer")  # else QEMU says an empty one
    _sub(chassis, "entry", SMBIOS_PRODUCT, name="asset")
    return sysinfo


def cdrom_element(path: str, machine: str | None = None) -> ET.Element:
    """A read-only CD-ROM holding the image at `path` (the config drive), on the bus the
    `machine` type has for it (`cdrom_bus`)."""
    element = ET.Element("disk", {"type": "file", "device": "cdrom"})
    _sub(element, "driver", name="qemu", type="raw")
    _sub(element, "source", file=path)
    bus = cdrom_bus(machine)
    _sub(element, "target", dev=CONFIG_DRIVE_TARGETS[bus], bus=bus)
    _sub(element, "readonly")
    return element


def _interface_element(parent: ET.Element, nic: NicSpec) -> None:
    if nic.bridge is not None:
        element = _sub(parent, "interface", type="bridge")
        _sub(element, "mac", address=nic.mac)
        _sub(element, "source", bridge=nic.bridge)
        _sub(element, "target", dev=nic.tap)
    else:
        # The network agent has already created the tap (with its anti-spoofing rules);
        # managed='no' makes libvirt use it as it is instead of creating its own.
        element = _sub(parent, "interface", type="ethernet")
        _sub(element, "mac", address=nic.mac)
        _sub(element, "target", dev=nic.tap, managed="no")
    _sub(element, "model", type="virtio")


def build_domain_xml(spec: InstanceSpec, settings: DomainSettings) -> str:
    """The complete persistent definition of an instance."""
    root = ET.Element("domain", {"type": settings.domain_type})
    _sub(root, "name", domain_name(spec.instance_id))
    _sub(root, "uuid", domain_uuid(spec.instance_id))
    metadata = _sub(root, "metadata")
    instance = _sub(metadata, f"{{{METADATA_NS}}}instance")
    _sub(instance, f"{{{METADATA_NS}}}id", spec.instance_id)
    _sub(instance, f"{{{METADATA_NS}}}name", spec.name)
    _sub(root, "memory", str(spec.ram_mb), unit="MiB")
    _sub(root, "currentMemory", str(spec.ram_mb), unit="MiB")
    _sub(root, "vcpu", str(spec.vcpus), placement="static")

    os_element = _sub(root, "os")
    type_attrs = {"arch": settings.arch}
    if settings.machine is not None:
        type_attrs["machine"] = settings.machine
    _sub(os_element, "type", "hvm", **type_attrs)
    if spec.boot is not None:
        _sub(os_element, "kernel", spec.boot.kernel)
        if spec.boot.initrd is not None:
            _sub(os_element, "initrd", spec.boot.initrd)
        _sub(os_element, "cmdline", spec.boot.cmdline)
    else:
        _sub(os_element, "boot", dev="hd")
    _sub(os_element, "smbios", mode="sysinfo")

    # ACPI is what a graceful stop and a soft reboot go through.
    features = _sub(root, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    _sub(root, "clock", offset="utc")
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    # destroy (not restart) on a crash, so the agent sees the crash and reports it.
    _sub(root, "on_crash", "destroy")

    root.append(smbios_element(spec.instance_id))
    addressed = [nic for nic in spec.nics if nic.address is not None]
    if addressed:
        # No DHCP server runs on Virga's networks: the first NIC's address reaches the guest
        # through QEMU's fw_cfg (see guest_network).
        nic = addressed[0]
        assert nic.address is not None
        interface = ipaddress.ip_interface(nic.address)
        root.append(
            sysinfo_element(
                str(interface.ip), interface.network.prefixlen, nic.gateway, mac=nic.mac
            )
        )

    devices = _sub(root, "devices")
    for disk in spec.disks:
        devices.append(disk_element(disk))
    if spec.config_drive is not None:
        path = config_drive_path(settings, spec.instance_id)
        if path is None:
            raise ValueError(f"{spec.instance_id} has a config drive but no directory for it")
        devices.append(cdrom_element(path, settings.machine))
    for nic in spec.nics:
        _interface_element(devices, nic)
    log_path = console_log_path(settings, spec.instance_id)
    if log_path is not None:
        # A pty (not a plain file) keeps `virsh console` usable; <log> keeps a copy on disk.
        serial = _sub(devices, "serial", type="pty")
        _sub(serial, "log", file=log_path, append="on")
        _sub(serial, "target", port="0")
        console = _sub(devices, "console", type="pty")
        _sub(console, "target", type="serial", port="0")
    return ET.tostring(root, encoding="unicode")


def ceph_secret_xml(secret_uuid: str, user: str) -> str:
    """A libvirt secret for a cephx user's key: persistent, private (never read back)."""
    root = ET.Element("secret", {"ephemeral": "no", "private": "yes"})
    _sub(root, "uuid", secret_uuid)
    _sub(root, "description", f"Virga: Ceph client.{user}")
    usage = _sub(root, "usage", type="ceph")
    # The usage name must be unique among the host's secrets: the UUID makes it so.
    _sub(usage, "name", f"virga client.{user} {secret_uuid}")
    return ET.tostring(root, encoding="unicode")


def source_key(source: RbdSource | FileSource) -> str:
    """Identity of a disk's backing store, comparable with `parse_disks` output."""
    if isinstance(source, RbdSource):
        return f"rbd:{source.pool}/{source.image}"
    return f"file:{source.path}"


def _element_source_key(disk: ET.Element) -> str:
    source = disk.find("source")
    if source is None:
        return f"{disk.get('type')}:"
    if disk.get("type") == "network":
        return f"{source.get('protocol')}:{source.get('name')}"
    return f"{disk.get('type')}:{source.get('file') or source.get('dev') or ''}"


def _disk_elements(devices: ET.Element) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for disk in devices.findall("disk"):
        if disk.get("device") == "cdrom":
            continue  # the config drive: part of the definition, not one of the volumes
        target = disk.find("target")
        dev = None if target is None else target.get("dev")
        if dev is not None:
            found[dev] = disk
    return found


def _devices(root: ET.Element) -> ET.Element:
    devices = root.find("devices")
    return devices if devices is not None else ET.SubElement(root, "devices")


def parse_disks(domain: str) -> dict[str, str]:
    """Target device -> backing store identity, for every disk of a domain XML (CD-ROMs,
    i.e. the config drive, left out)."""
    elements = _disk_elements(_devices(ET.fromstring(domain)))
    return {dev: _element_source_key(element) for dev, element in elements.items()}


def find_disk_xml(domain: str, target_dev: str) -> str | None:
    """The <disk> element at `target_dev` as libvirt describes it, or None."""
    element = _disk_elements(_devices(ET.fromstring(domain))).get(target_dev)
    return None if element is None else ET.tostring(element, encoding="unicode")


def with_disk(domain: str, disk: DiskSpec) -> str:
    """The domain XML with `disk` appended (the caller checked the target is free)."""
    root = ET.fromstring(domain)
    _devices(root).append(disk_element(disk))
    return ET.tostring(root, encoding="unicode")


def without_disk(domain: str, target_dev: str) -> str:
    """The domain XML without the disk at `target_dev`."""
    root = ET.fromstring(domain)
    devices = _devices(root)
    element = _disk_elements(devices).get(target_dev)
    if element is not None:
        devices.remove(element)
    return ET.tostring(root, encoding="unicode")


def interface_targets(domain: str) -> list[str]:
    """Host-side device names of a domain's interfaces (what interfaceStats takes)."""
    targets = []
    for interface in _devices(ET.fromstring(domain)).findall("interface"):
        target = interface.find("target")
        dev = None if target is None else target.get("dev")
        if dev is not None:
            targets.append(dev)
    return targets


def instance_id_from_metadata(metadata: str) -> str | None:
    """The instance id in Virga's metadata element, as `virDomainGetMetadata` returns it.

    libvirt hands the element back without our namespace prefix, so children are matched
    by local name.
    """
    for child in ET.fromstring(metadata):
        if child.tag.rpartition("}")[2] == "id":
            return child.text
    return None
