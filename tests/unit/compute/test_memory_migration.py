"""The live-migration contract on the memory driver (the libvirt driver's, on two real
libvirtd daemons, is tests/integration/compute/test_live_migration.py), and the libvirt
driver's pure parts: the call it makes and the progress it reads."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from virga_compute.core.spec import (
    CephMonitor,
    DiskSpec,
    DomainInfo,
    DomainState,
    FileSource,
    InstanceSpec,
    RbdSource,
)
from virga_compute.drivers.base import (
    HypervisorUnavailable,
    InstanceNotFound,
    MigrationAborted,
    MigrationFailed,
    MigrationOptions,
    MigrationProgress,
)
from virga_compute.drivers.domain_xml import DomainSettings, build_domain_xml
from virga_compute.drivers.libvirt_migration import (
    FLAGS,
    migration_call,
    progress_from_stats,
    with_ceph_identity,
)
from virga_compute.drivers.memory import MemoryComputeDriver

SPEC = InstanceSpec(instance_id="i-1", name="n", vcpus=1, ram_mb=128)
B = "memory://b"


async def two_hosts() -> tuple[MemoryComputeDriver, MemoryComputeDriver]:
    a, b = MemoryComputeDriver(), MemoryComputeDriver()
    a.add_peer(B, b)
    b.add_peer("memory://a", a)
    await a.spawn(SPEC)
    return a, b


async def test_a_running_guest_moves_there_and_back() -> None:
    a, b = await two_hosts()
    await a.migrate_live("i-1", B, "tcp://b")
    assert await a.list_instances() == []
    assert await b.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]
    await b.migrate_live("i-1", "memory://a", "tcp://a")
    assert await a.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]
    assert await b.list_instances() == []


async def test_a_repeated_call_after_success_finds_the_guest_gone() -> None:
    a, b = await two_hosts()
    await a.migrate_live("i-1", B, "tcp://b")
    with pytest.raises(InstanceNotFound):
        await a.migrate_live("i-1", B, "tcp://b")
    assert (await b.get_info("i-1")).state is DomainState.RUNNING


async def test_an_unreachable_destination_fails_and_the_guest_stays() -> None:
    a, b = await two_hosts()
    with pytest.raises(MigrationFailed, match="cannot reach"):
        await a.migrate_live("i-1", "memory://nowhere", "tcp://nowhere")
    b.set_available(False)
    with pytest.raises(MigrationFailed):
        await a.migrate_live("i-1", B, "tcp://b")
    assert (await a.get_info("i-1")).state is DomainState.RUNNING


async def test_a_stopped_guest_cannot_be_migrated_live() -> None:
    a, b = await two_hosts()
    await a.stop("i-1", grace_period=0)
    with pytest.raises(MigrationFailed, match="not running"):
        await a.migrate_live("i-1", B, "tcp://b")
    assert (await a.get_info("i-1")).state is DomainState.SHUTOFF
    assert await b.list_instances() == []


async def test_a_migration_that_does_not_converge_is_aborted_after_the_timeout() -> None:
    a, b = await two_hosts()
    a.stall_migrations()
    samples: list[MigrationProgress] = []
    options = MigrationOptions(timeout=0.3, poll_interval=0.05)
    with pytest.raises(MigrationAborted):
        await a.migrate_live("i-1", B, "tcp://b", options=options, on_progress=samples.append)
    assert samples
    assert isinstance(MigrationAborted("x"), MigrationFailed)  # callers may catch either
    assert (await a.get_info("i-1")).state is DomainState.RUNNING
    assert await b.list_instances() == []


async def test_a_missing_instance_and_an_outage_are_reported_as_such() -> None:
    a, _ = await two_hosts()
    with pytest.raises(InstanceNotFound):
        await a.migrate_live("i-2", B, "tcp://b")
    with pytest.raises(InstanceNotFound):
        await a.migration_progress("i-2")
    assert await a.migration_progress("i-1") is None
    a.set_available(False)
    with pytest.raises(HypervisorUnavailable):
        await a.migrate_live("i-1", B, "tcp://b")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="positive"):
        MigrationOptions(timeout=0)
    with pytest.raises(ValueError, match="positive"):
        MigrationOptions(bandwidth_mib=0)


def test_the_libvirt_call_follows_the_options() -> None:
    params, flags = migration_call("qemu+tcp://b/system", "10.0.0.2", MigrationOptions())
    assert params == {libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.0.0.2"}
    assert flags == FLAGS
    assert flags & libvirt.VIR_MIGRATE_LIVE
    assert flags & libvirt.VIR_MIGRATE_PEER2PEER
    options = MigrationOptions(auto_converge=True, compressed=True, bandwidth_mib=50)
    params, flags = migration_call("qemu+tcp://b/system", "tcp://10.0.0.2:49200", options)
    assert params == {
        libvirt.VIR_MIGRATE_PARAM_URI: "tcp://10.0.0.2:49200",
        libvirt.VIR_MIGRATE_PARAM_COMPRESSION: "xbzrle",
        libvirt.VIR_MIGRATE_PARAM_BANDWIDTH: 50,
    }
    assert flags == FLAGS | libvirt.VIR_MIGRATE_AUTO_CONVERGE | libvirt.VIR_MIGRATE_COMPRESSED


def test_job_statistics_become_progress() -> None:
    assert progress_from_stats("i-1", {"type": libvirt.VIR_DOMAIN_JOB_NONE}) is None
    stats = {
        "type": libvirt.VIR_DOMAIN_JOB_UNBOUNDED,
        "time_elapsed": 1200,
        "data_total": 100,
        "data_processed": 40,
        "data_remaining": 60,
        "memory_dirty_rate": 7,
        "memory_iteration": 2,
    }
    assert progress_from_stats("i-1", stats) == MigrationProgress("i-1", 1200, 100, 40, 60, 7, 2)


def test_the_destinations_definition_opens_every_rbd_disk_as_the_destinations_user() -> None:
    rbd = RbdSource(
        pool="volumes", image="vol-1", monitors=(CephMonitor("127.0.0.1"),),
        auth_user="virga-compute-a", secret_uuid="5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10",
    )  # fmt: skip
    spec = InstanceSpec(
        instance_id="i-1", name="vm", vcpus=1, ram_mb=256,
        disks=(DiskSpec("vda", rbd), DiskSpec("vdb", FileSource("/var/lib/virga/x.img"))),
    )  # fmt: skip
    source = build_domain_xml(spec, DomainSettings(domain_type="qemu"))
    uuid_b = "8a4c7e1e-7d7b-5b1a-9a56-0c5c8d1f2e3a"
    moved = ET.fromstring(with_ceph_identity(source, "virga-compute-b", uuid_b))
    auths = [
        (a.get("username"), s.get("uuid")) for a in moved.iter("auth") for s in a.iter("secret")
    ]
    assert auths == [("virga-compute-b", uuid_b)]
    # Nothing else changes: the same disks, from the same places.
    before, after = ET.fromstring(source), moved
    for element in (before, after):
        for auth in element.iter("auth"):
            auth.attrib.clear()
            auth.clear()
    assert ET.tostring(before) == ET.tostring(after)
