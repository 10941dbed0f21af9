"""The config drive and SMBIOS identity a cloud-init guest needs: what a placement carries
into the agent's fold and snapshot, the spec `decide` builds, the drive's files, the domain
XML (SMBIOS, CD-ROM) and the memory driver's record of it."""

from __future__ import annotations

import base64
import json
import xml.etree.ElementTree as ET

import orjson
import pytest

from virga_compute.config import ComputeConfig
from virga_compute.core.decide import build_spec, decide
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import ConfigDrive, InstanceSpec, NicSpec
from virga_compute.drivers import domain_xml
from virga_compute.drivers.config_drive import drive_files
from virga_compute.drivers.domain_xml import DomainSettings, build_domain_xml
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.effects.intents import Spawn
from virga_events import Envelope, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.scheduler import InstanceScheduled
from virga_events.envelope import decode, encode
from virga_runtime.effect_codec import decode_effect, encode_effect

HOST = "host-1"
CONFIG = ComputeConfig(host=HOST, zone="zone-a")
SMALL = Flavor(name="m1.small", vcpus=1, ram_mb=256, disk_gb=1)
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkVzYmV4b2RhdGEga2V5IGZvciB0ZXN0cw== me@host"
SCRIPT = b"#!/bin/sh\necho hello > /var/tmp/marker\n"
OPENSTACK = "openstack/latest"


def scheduled(instance_id: str = "i-1", *, config_drive: bool = True) -> Envelope:
    event = InstanceScheduled(
        host=HOST,
        rack="r1",
        zone="zone-a",
        attempt=1,
        name="web 1",
        flavor=SMALL,
        hostname="web-1",
        key_name="laptop",
        public_keys=(KEY,),
        user_data=base64.b64encode(SCRIPT).decode(),
        config_drive=config_drive,
    )
    return new_event(event, aggregate_id=instance_id, tenant_id="t-1", producer="scheduler")


def placed(*envelopes: Envelope) -> ComputeState:
    state = ComputeState(host=HOST)
    for envelope in envelopes:
        state = evolve(state, envelope)
    return state


def drive_spec(nics: tuple[NicSpec, ...] = ()) -> InstanceSpec:
    drive = ConfigDrive(
        availability_zone="zone-a",
        hostname="web-1",
        key_name="laptop",
        public_keys=(KEY,),
        user_data=base64.b64encode(SCRIPT).decode(),
    )
    return InstanceSpec("i-1", "web 1", 1, 256, nics=nics, config_drive=drive)


# -- the log into the fold ----------------------------------------------------------------------


def test_the_fold_keeps_what_the_guest_is_told_and_a_snapshot_keeps_it_too() -> None:
    state = placed(scheduled())
    record = state.instances["i-1"]
    assert (record.hostname, record.key_name, record.public_keys) == ("web-1", "laptop", (KEY,))
    assert record.config_drive is True
    assert base64.b64decode(record.user_data or "") == SCRIPT
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))) == state


def test_a_snapshot_from_before_config_drives_restores_without_one() -> None:
    data = snapshot(placed(scheduled()))
    for key in ("hostname", "key_name", "public_keys", "user_data", "config_drive"):
        del data["instances"][0][key]
    record = restore(data).instances["i-1"]
    assert (record.hostname, record.public_keys, record.config_drive) == (None, (), False)


def test_an_instance_scheduled_from_before_these_fields_still_decodes_and_folds() -> None:
    wire = orjson.loads(encode(scheduled()))
    for key in ("hostname", "key_name", "public_keys", "user_data", "config_drive"):
        del wire["payload"][key]
    old = decode(orjson.dumps(wire))
    state = placed(old)
    record = state.instances["i-1"]
    assert (record.hostname, record.key_name, record.public_keys) == (None, None, ())
    assert (record.user_data, record.config_drive) == (None, False)
    [spawn] = decide(CONFIG, state, old)
    assert isinstance(spawn, Spawn)
    assert spawn.spec.config_drive is None


# -- the spec -----------------------------------------------------------------------------------


def test_a_config_drive_instance_spawns_with_one_that_names_the_hosts_zone() -> None:
    placement = scheduled()
    [spawn] = decide(CONFIG, placed(placement), placement)
    assert isinstance(spawn, Spawn)
    assert spawn.spec.config_drive == ConfigDrive(
        availability_zone="zone-a",
        hostname="web-1",
        key_name="laptop",
        public_keys=(KEY,),
        user_data=base64.b64encode(SCRIPT).decode(),
        project_id="t-1",
    )


def test_a_spawn_with_a_config_drive_survives_the_effect_journal() -> None:
    spawn = Spawn(drive_spec(), "t-1", HOST)
    assert decode_effect(Spawn, encode_effect(spawn)) == spawn


def test_an_instance_without_a_config_drive_spawns_without_one() -> None:
    state = placed(scheduled(config_drive=False))
    assert build_spec(CONFIG, state, state.instances["i-1"]).config_drive is None


def test_user_data_that_is_not_base64_fails_the_instance_instead_of_spawning() -> None:
    state = placed(scheduled())
    state.instances["i-1"].user_data = "not base64!"
    with pytest.raises(ValueError, match="base64"):
        build_spec(CONFIG, state, state.instances["i-1"])


def test_keys_go_by_the_keypairs_name_and_a_nameless_one_by_default() -> None:
    def keys(drive: ConfigDrive) -> object:
        spec = InstanceSpec("i-1", "web 1", 1, 256, config_drive=drive)
        return json.loads(drive_files(spec)[f"{OPENSTACK}/meta_data.json"])["public_keys"]

    assert keys(ConfigDrive("z", key_name="k", public_keys=("a", "b"))) == {
        "k": "a",
        "k-1": "b",
    }
    assert keys(ConfigDrive("z", public_keys=("a",))) == {"default": "a"}
    assert keys(ConfigDrive("z")) == {}


# -- the drive's files --------------------------------------------------------------------------


def test_the_drive_holds_openstacks_layout_of_the_instance() -> None:
    nic = NicSpec(mac="52:54:00:aa:bb:cc", tap="tap1", address="10.0.0.5/24", gateway="10.0.0.1")
    files = drive_files(drive_spec((nic,)))
    meta = json.loads(files[f"{OPENSTACK}/meta_data.json"])
    assert meta["uuid"] == "i-1"
    assert (meta["name"], meta["hostname"]) == ("web 1", "web-1")
    assert meta["public_keys"] == {"laptop": KEY}
    assert meta["availability_zone"] == "zone-a"
    assert files[f"{OPENSTACK}/user_data"] == SCRIPT  # decoded
    network = json.loads(files[f"{OPENSTACK}/network_data.json"])
    [link] = network["links"]
    assert link["ethernet_mac_address"] == "52:54:00:aa:bb:cc"
    assert "mtu" not in link  # the agent does not know the network's MTU
    [net] = network["networks"]
    assert (net["ip_address"], net["netmask"]) == ("10.0.0.5", "255.255.255.0")
    assert net["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]


def test_without_an_addressed_nic_or_user_data_the_drive_says_nothing_of_them() -> None:
    spec = InstanceSpec("i-1", "web 1", 1, 256, config_drive=ConfigDrive("zone-a"))
    files = drive_files(spec)
    assert json.loads(files[f"{OPENSTACK}/network_data.json"]) == {}
    assert f"{OPENSTACK}/user_data" not in files
    assert json.loads(files[f"{OPENSTACK}/meta_data.json"])["hostname"] == "web 1"


# -- the domain ---------------------------------------------------------------------------------


def _entries(root: ET.Element, path: str) -> dict[str, str | None]:
    return {entry.get("name", ""): entry.text for entry in root.findall(f"{path}/entry")}


def test_every_domain_says_it_is_an_openstack_nova_machine_with_its_own_uuid() -> None:
    spec = InstanceSpec("i-1", "web 1", 1, 256)
    root = ET.fromstring(build_domain_xml(spec, DomainSettings()))
    uuid = domain_xml.domain_uuid("i-1")
    assert root.findtext("uuid") == uuid
    assert _entries(root, "sysinfo[@type='smbios']/system") == {
        "manufacturer": "Virga",
        "product": "OpenStack Nova",
        "serial": uuid,
        "uuid": uuid,
        "family": "Virtual Machine",
    }
    assert _entries(root, "sysinfo[@type='smbios']/chassis") == {
        "manufacturer": "Virga",
        "asset": "OpenStack Nova",
    }
    smbios = root.find("os/smbios")
    assert smbios is not None
    assert smbios.get("mode") == "sysinfo"
    assert root.find("devices/disk[@device='cdrom']") is None


def test_the_smbios_identity_sits_beside_the_fw_cfg_address_of_virgas_own_guest() -> None:
    nic = NicSpec(mac="52:54:00:aa:bb:cc", tap="tap1", address="10.0.0.5/24", gateway="10.0.0.1")
    spec = InstanceSpec("i-1", "web 1", 1, 256, nics=(nic,))
    root = ET.fromstring(build_domain_xml(spec, DomainSettings()))
    assert sorted(s.get("type", "") for s in root.findall("sysinfo")) == ["fwcfg", "smbios"]


def test_a_config_drive_is_a_read_only_ide_cdrom_in_the_drive_directory() -> None:
    """IDE on the default (i440fx) machine: Debian's cloud kernel has no AHCI driver, and its
    guest never saw the drive on SATA; SATA only where there is no IDE (q35)."""
    settings = DomainSettings(config_drive_dir="/var/lib/virga/drives/")
    definition = build_domain_xml(drive_spec(), settings)
    cdrom = ET.fromstring(definition).find("devices/disk[@device='cdrom']")
    assert cdrom is not None
    assert cdrom.get("type") == "file"
    source, target = cdrom.find("source"), cdrom.find("target")
    assert source is not None
    assert target is not None
    assert source.get("file") == "/var/lib/virga/drives/virga-i-1.iso"
    assert domain_xml.config_drive_path(settings, "i-1") == source.get("file")
    assert (target.get("dev"), target.get("bus")) == ("hdc", "ide")
    assert cdrom.find("readonly") is not None
    assert domain_xml.parse_disks(definition) == {}  # not one of the volumes
    q35 = DomainSettings(config_drive_dir="/d", machine="pc-q35-7.2")
    on_q35 = ET.fromstring(build_domain_xml(drive_spec(), q35)).find(
        "devices/disk[@device='cdrom']/target"
    )
    assert on_q35 is not None
    assert (on_q35.get("dev"), on_q35.get("bus")) == ("sda", "sata")


def test_a_config_drive_without_a_directory_is_refused() -> None:
    with pytest.raises(ValueError, match="config drive"):
        build_domain_xml(drive_spec(), DomainSettings())


def test_the_hostname_is_nowhere_in_the_domain() -> None:
    definition = build_domain_xml(drive_spec(), DomainSettings(config_drive_dir="/d"))
    assert "web-1" not in definition


# -- the memory driver --------------------------------------------------------------------------


async def test_the_memory_driver_records_the_drive_until_the_instance_is_destroyed() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(drive_spec())
    files = driver.config_drive("i-1")
    assert files is not None
    assert files[f"{OPENSTACK}/user_data"] == SCRIPT
    await driver.spawn(InstanceSpec("i-2", "plain", 1, 256))
    assert driver.config_drive("i-2") is None
    await driver.destroy("i-1")
    assert not driver.has_domain("virga-i-1")
