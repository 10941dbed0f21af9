"""LibvirtDriver behaviour beyond the shared contract, on libvirt's test hypervisor.

Faults the test hypervisor cannot produce (a guest that ignores ACPI, a start that fails)
are injected by wrapping the real connection, so everything else stays real libvirt.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest

from virga_compute.ceph_access import CephSecret
from virga_compute.core.spec import (
    DiskSpec,
    DomainInfo,
    DomainState,
    FileSource,
    InstanceSpec,
    NicSpec,
)
from virga_compute.drivers.base import DriverError, HypervisorUnavailable
from virga_compute.drivers.domain_xml import METADATA_NS, DomainSettings, domain_uuid
from virga_compute.drivers.libvirt import LibvirtDriver

pytestmark = pytest.mark.libvirt

TEST_URI = "test:///default"
REAL_OPEN = libvirt.open
SPEC = InstanceSpec(
    instance_id="i-1",
    name="web",
    vcpus=2,
    ram_mb=256,
    disks=(DiskSpec("vda", FileSource("/images/a.img")), DiskSpec("vdb", FileSource("/b.img"))),
    nics=(
        NicSpec("52:54:00:00:00:01", "tap-a", bridge="br0"),
        NicSpec("52:54:00:00:00:02", "tap-b"),
    ),
)


class _Proxy:
    """Delegates to a libvirt object except for the overridden methods."""

    def __init__(self, target: Any, **overrides: Callable[..., Any]) -> None:
        self._target = target
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        return self._overrides.get(name) or getattr(self._target, name)


def _open_with_faulty_domains(**domain_overrides: Callable[..., Any]) -> Callable[[str], Any]:
    def wrap(dom: Any) -> Any:
        return _Proxy(dom, **domain_overrides)

    def open_(uri: str) -> Any:
        conn = REAL_OPEN(uri)
        return _Proxy(
            conn,
            lookupByName=lambda name: wrap(conn.lookupByName(name)),
            defineXML=lambda xml: wrap(conn.defineXML(xml)),
            listAllDomains=lambda flags=0: [wrap(d) for d in conn.listAllDomains(flags)],
        )

    return open_


def _injected_failure(*_args: object) -> None:
    libvirt.virResetLastError()  # so the error carries no stale code from an earlier call
    raise libvirt.libvirtError("injected failure")


@pytest.fixture
def side() -> Iterator[Any]:
    """A plain connection to the same test hypervisor, opened before any driver's."""
    conn = REAL_OPEN(TEST_URI)
    try:
        # A test that leaked a connection would hand its domains to the next test.
        assert [d.name() for d in conn.listAllDomains(0)] == ["test"], "test hypervisor not fresh"
        yield conn
    finally:
        conn.close()


@pytest.fixture
async def driver(side: Any, tmp_path: Path) -> AsyncIterator[LibvirtDriver]:
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as driver:
        yield driver


def test_connections_share_one_test_hypervisor_until_the_last_closes() -> None:
    """Why the driver holds one connection for its lifetime."""
    first, second = REAL_OPEN(TEST_URI), REAL_OPEN(TEST_URI)
    try:
        first.defineXML(
            "<domain type='test'><name>shared</name><memory>65536</memory>"
            "<os><type>hvm</type></os></domain>"
        )
        assert "shared" in [d.name() for d in second.listAllDomains(0)]
    finally:
        first.close()
        second.close()
    fresh = REAL_OPEN(TEST_URI)
    try:
        assert [d.name() for d in fresh.listAllDomains(0)] == ["test"]
    finally:
        fresh.close()


async def test_defined_domain_is_named_marked_and_configured(side: Any, tmp_path: Path) -> None:
    settings = DomainSettings(domain_type="test", console_log_dir=str(tmp_path))
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path), settings=settings) as drv:
        await drv.spawn(SPEC)
        dom = side.lookupByName("virga-i-1")
        assert dom.UUIDString() == domain_uuid("i-1")
        root = ET.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
        assert root.get("type") == "test"
        assert root.findtext(f"metadata/{{{METADATA_NS}}}instance/{{{METADATA_NS}}}id") == "i-1"
        assert root.find("devices/serial/log") is not None
        assert [t.get("dev") for t in root.iterfind("devices/interface/target")] == [
            "tap-a",
            "tap-b",
        ]


async def test_domains_stay_defined_after_the_driver_closes(side: Any, tmp_path: Path) -> None:
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as first:
        await first.spawn(SPEC)
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as second:
        assert await second.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]


async def test_capabilities_of_the_test_hypervisor(driver: LibvirtDriver) -> None:
    assert (await driver.capabilities()).live_disk_attach is False


async def test_usage_reads_the_hypervisors_counters(driver: LibvirtDriver) -> None:
    await driver.spawn(SPEC)
    [sample] = await driver.usage()
    # The test hypervisor reports synthetic, non-zero counters for every disk and NIC:
    # zeros here would mean a stat went unread.
    assert sample.instance_id == "i-1"
    assert sample.memory_kb == 256 * 1024
    for counter in (
        sample.cpu_time_ns,
        sample.disk_read_bytes,
        sample.disk_write_bytes,
        sample.net_rx_bytes,
        sample.net_tx_bytes,
    ):
        assert counter > 0


async def test_paused_instance(driver: LibvirtDriver, side: Any) -> None:
    await driver.spawn(SPEC)
    side.lookupByName("virga-i-1").suspend()
    assert (await driver.get_info("i-1")).state is DomainState.PAUSED
    # Paused still holds its memory, so it is still sampled.
    assert [sample.instance_id for sample in await driver.usage()] == ["i-1"]
    await driver.start("i-1")
    assert (await driver.get_info("i-1")).state is DomainState.RUNNING
    side.lookupByName("virga-i-1").suspend()
    await driver.stop("i-1")
    assert (await driver.get_info("i-1")).state is DomainState.SHUTOFF


async def test_failed_start_leaves_no_partial_domain(
    side: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libvirt, "open", _open_with_faulty_domains(create=_injected_failure))
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as drv:
        with pytest.raises(DriverError, match="injected failure"):
            await drv.spawn(SPEC)
        assert await drv.list_instances() == []
    assert "virga-i-1" not in [d.name() for d in side.listAllDomains(0)]


async def test_stop_forces_off_a_guest_that_ignores_shutdown(
    side: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(libvirt, "open", _open_with_faulty_domains(shutdown=lambda: None))
    driver = LibvirtDriver(TEST_URI, instances_path=str(tmp_path), poll_interval=0.05)
    async with driver:
        await driver.spawn(SPEC)
        started = time.monotonic()
        await driver.stop("i-1", grace_period=0.3)
        assert time.monotonic() - started >= 0.3
        assert (await driver.get_info("i-1")).state is DomainState.SHUTOFF


async def test_unreachable_hypervisor(tmp_path: Path) -> None:
    uri = f"qemu:///system?socket={tmp_path}/no-libvirtd.sock"
    driver = LibvirtDriver(uri, instances_path=str(tmp_path))
    with pytest.raises(HypervisorUnavailable):
        await driver.connect()
    with pytest.raises(HypervisorUnavailable):
        await driver.list_instances()
    await driver.close()


async def test_a_broken_connection_is_reported_then_reopened(driver: LibvirtDriver) -> None:
    await driver.spawn(SPEC)
    # Simulates libvirtd going away under the driver (the side connection keeps the
    # test hypervisor's state alive).
    assert driver._conn is not None
    driver._conn.close()
    with pytest.raises(HypervisorUnavailable):
        await driver.list_instances()
    assert await driver.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]


async def test_a_ceph_secret_is_set_on_connect_where_the_hypervisor_keeps_secrets(
    side: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_uuid = "5c2e5e0e-6c5e-4a52-9a1f-0e7f1f6f2a10"
    secret = CephSecret(secret_uuid, "admin", b"key")
    defined: list[tuple[str, bytes]] = []

    class Secret:
        def setValue(self, value: bytes, flags: int) -> None:  # noqa: N802 (libvirt's name)
            defined.append(("value", value))

    def define(xml: str, flags: int) -> Secret:
        defined.append(("xml", xml.encode()))
        return Secret()

    def open_keeping_secrets(uri: str) -> Any:
        return _Proxy(REAL_OPEN(uri), secretDefineXML=define)

    # The test hypervisor has no secrets at all: the driver connects without one.
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path), ceph_secret=secret) as plain:
        assert await plain.list_instances() == []
    # One that keeps them gets the secret, then its value, on every new connection.
    monkeypatch.setattr(libvirt, "open", open_keeping_secrets)
    async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path), ceph_secret=secret) as driver:
        await driver.list_instances()
    assert [kind for kind, _ in defined] == ["xml", "value"]
    assert secret_uuid.encode() in defined[0][1]
    assert defined[1][1] == b"key"
