"""One contract for every ComputeDriver: each backend subclasses `DriverContract` once."""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import libvirt
import pytest

from virga_compute.core.power import PowerChanged
from virga_compute.core.spec import (
    DiskSpec,
    DomainInfo,
    DomainState,
    FileSource,
    InstanceSpec,
    NicSpec,
)
from virga_compute.drivers.base import (
    ComputeDriver,
    DiskConflict,
    DriverError,
    InstanceNotFound,
    OperationNotSupported,
)
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_compute.drivers.memory import MemoryComputeDriver

TEST_URI = "test:///default"


def spec(instance_id: str = "i-1", *, ram_mb: int = 256) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        name=f"name of {instance_id}",
        vcpus=1,
        ram_mb=ram_mb,
        disks=(DiskSpec("vda", FileSource(f"/images/{instance_id}.img")),),
        nics=(NicSpec("52:54:00:00:00:01", f"tap-{instance_id}"),),
    )


async def wait_for(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "not reported in time"
        await asyncio.sleep(0.05)


EXTRA_DISK = DiskSpec("vdb", FileSource("/images/extra.img"), serial="vol-2")


class DriverContract(abc.ABC):
    """Behaviour every driver must show; subclasses provide `driver` and foreign domains."""

    @pytest.fixture
    @abc.abstractmethod
    async def driver(self, tmp_path: Path) -> AsyncIterator[ComputeDriver]:
        yield MemoryComputeDriver()  # pragma: no cover - overridden

    @abc.abstractmethod
    def add_foreign_domain(self, driver: ComputeDriver, name: str) -> None:
        """Make a running domain on the hypervisor that Virga did not create."""

    @abc.abstractmethod
    def foreign_domain_exists(self, driver: ComputeDriver, name: str) -> bool:
        """Whether that domain is still defined."""

    @abc.abstractmethod
    def destroy_outside(self, driver: ComputeDriver, instance_id: str) -> None:
        """Force the instance's domain off behind the driver's back (`virsh destroy`)."""

    async def state(self, driver: ComputeDriver, instance_id: str = "i-1") -> DomainState:
        return (await driver.get_info(instance_id)).state

    async def test_spawn_runs_and_lists_the_instance(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        assert await driver.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]

    async def test_spawn_twice_leaves_one_running_domain(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.spawn(spec())
        assert await driver.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]

    async def test_spawn_of_a_defined_instance_starts_it_unchanged(
        self, driver: ComputeDriver
    ) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        await driver.attach_disk("i-1", EXTRA_DISK)
        await driver.spawn(spec())  # a replayed spawn must not redefine from the old spec
        assert await self.state(driver) is DomainState.RUNNING
        assert await driver.attached_disks("i-1") == ["vda", "vdb"]

    async def test_guest_events_report_power_changes_with_their_cause(
        self, driver: ComputeDriver
    ) -> None:
        seen: list[tuple[str, DomainState, str | None]] = []

        async def listen() -> None:
            async for event in driver.guest_events():
                assert isinstance(event, PowerChanged)
                seen.append((event.instance_id, event.state, event.cause))

        listening = asyncio.create_task(listen())
        try:
            # Started (again) until the listener hears it: then it listens.
            for _ in range(100):
                await driver.spawn(spec())
                await asyncio.sleep(0.1)
                if ("i-1", DomainState.RUNNING, None) in seen:
                    break
                await driver.stop("i-1", grace_period=0)
            else:
                raise AssertionError("no start was reported")
            self.destroy_outside(driver, "i-1")
            await wait_for(lambda: ("i-1", DomainState.SHUTOFF, "destroyed") in seen)
            off = DomainInfo("i-1", DomainState.SHUTOFF, "destroyed")
            assert await driver.list_instances() == [off]
            await driver.destroy("i-1")
            await wait_for(lambda: ("i-1", DomainState.MISSING, None) in seen)
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening

    async def test_stop_shuts_off_and_is_idempotent(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        assert await self.state(driver) is DomainState.SHUTOFF
        await driver.stop("i-1", grace_period=0)
        # Off because the guest shut down (ACPI): the second, forced, stop changed nothing.
        stopped = DomainInfo("i-1", DomainState.SHUTOFF, "shutdown")
        assert await driver.list_instances() == [stopped]

    async def test_start_after_stop_and_when_running(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1", grace_period=0)
        await driver.start("i-1")
        assert await self.state(driver) is DomainState.RUNNING
        await driver.start("i-1")
        assert await self.state(driver) is DomainState.RUNNING

    @pytest.mark.parametrize("hard", [False, True])
    async def test_reboot_keeps_it_running(self, driver: ComputeDriver, hard: bool) -> None:
        await driver.spawn(spec())
        await driver.reboot("i-1", hard=hard)
        assert await self.state(driver) is DomainState.RUNNING

    async def test_reboot_of_a_stopped_instance_starts_it(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        await driver.reboot("i-1")
        assert await self.state(driver) is DomainState.RUNNING

    async def test_destroy_removes_and_is_idempotent(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.spawn(spec("i-2"))
        await driver.destroy("i-1")
        assert await self.state(driver) is DomainState.MISSING
        assert await driver.list_instances() == [DomainInfo("i-2", DomainState.RUNNING)]
        await driver.destroy("i-1")
        await driver.destroy("never-existed")

    async def test_destroy_of_a_stopped_instance(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        await driver.destroy("i-1")
        assert await driver.list_instances() == []

    async def test_unknown_instance_raises_instance_not_found(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        operations: list[Callable[[], Awaitable[object]]] = [
            lambda: driver.start("nope"),
            lambda: driver.stop("nope"),
            lambda: driver.reboot("nope"),
            lambda: driver.attach_disk("nope", EXTRA_DISK),
            lambda: driver.detach_disk("nope", "vda"),
            lambda: driver.resize_disk("nope", "vda", 2 << 30),
            lambda: driver.attached_disks("nope"),
            lambda: driver.open_console("nope"),
        ]
        for operation in operations:
            with pytest.raises(InstanceNotFound) as raised:
                await operation()
            assert raised.value.instance_id == "nope"
        assert await self.state(driver, "nope") is DomainState.MISSING

    async def test_a_console_opens_on_a_running_instance_only(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        with pytest.raises(DriverError):
            await driver.open_console("i-1")
        await driver.start("i-1")
        await self.check_console(driver)

    @abc.abstractmethod
    async def check_console(self, driver: ComputeDriver) -> None:
        """What the console of running instance i-1 does on this hypervisor."""

    async def test_foreign_domains_are_never_listed_nor_touched(
        self, driver: ComputeDriver
    ) -> None:
        # The second name claims to be Virga's, but Virga never defined it.
        for name in ("someone-elses", "virga-impostor"):
            self.add_foreign_domain(driver, name)
        await driver.spawn(spec())
        assert await driver.list_instances() == [DomainInfo("i-1", DomainState.RUNNING)]
        assert await self.state(driver, "impostor") is DomainState.MISSING
        with pytest.raises(InstanceNotFound):
            await driver.stop("impostor")
        await driver.destroy("impostor")
        with pytest.raises(DriverError, match="not managed by Virga"):
            await driver.spawn(spec("impostor"))
        assert self.foreign_domain_exists(driver, "virga-impostor")
        assert self.foreign_domain_exists(driver, "someone-elses")
        assert [u.instance_id for u in await driver.usage()] == ["i-1"]

    async def test_capacity_is_positive(self, driver: ComputeDriver) -> None:
        capacity = await driver.capacity()
        assert capacity.vcpus > 0
        assert capacity.ram_mb > 0
        assert capacity.disk_gb > 0

    async def test_usage_has_one_sample_per_running_instance(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec("i-1", ram_mb=256))
        await driver.spawn(spec("i-2", ram_mb=512))
        await driver.spawn(spec("i-3"))
        await driver.stop("i-3")
        samples = await driver.usage()
        assert [(s.instance_id, s.memory_kb) for s in samples] == [
            ("i-1", 256 * 1024),
            ("i-2", 512 * 1024),
        ]
        for sample in samples:
            counters = (sample.cpu_time_ns, sample.disk_read_bytes, sample.net_tx_bytes)
            assert all(value >= 0 for value in counters)

    async def test_no_instances_no_usage(self, driver: ComputeDriver) -> None:
        assert await driver.usage() == []
        assert await driver.list_instances() == []

    async def test_disks_of_the_spec_are_attached(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        assert await driver.attached_disks("i-1") == ["vda"]

    async def test_attach_and_detach_on_a_stopped_instance(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        await driver.attach_disk("i-1", EXTRA_DISK)
        await driver.attach_disk("i-1", EXTRA_DISK)  # replay: same disk, same target
        assert await driver.attached_disks("i-1") == ["vda", "vdb"]
        await driver.start("i-1")
        assert await driver.attached_disks("i-1") == ["vda", "vdb"]
        await driver.stop("i-1")
        await driver.detach_disk("i-1", "vdb")
        await driver.detach_disk("i-1", "vdb")
        assert await driver.attached_disks("i-1") == ["vda"]

    async def test_attach_refuses_a_different_disk_on_a_used_target(
        self, driver: ComputeDriver
    ) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        with pytest.raises(DiskConflict):
            await driver.attach_disk("i-1", DiskSpec("vda", FileSource("/images/other.img")))
        assert await driver.attached_disks("i-1") == ["vda"]

    async def test_live_attach_follows_the_declared_capability(self, driver: ComputeDriver) -> None:
        await driver.spawn(spec())
        if (await driver.capabilities()).live_disk_attach:
            await driver.attach_disk("i-1", EXTRA_DISK)
            assert await driver.attached_disks("i-1") == ["vda", "vdb"]
            await driver.detach_disk("i-1", "vdb")
            assert await driver.attached_disks("i-1") == ["vda"]
        else:
            with pytest.raises(OperationNotSupported):
                await driver.attach_disk("i-1", EXTRA_DISK)
            with pytest.raises(OperationNotSupported):
                await driver.detach_disk("i-1", "vda")
            assert await driver.attached_disks("i-1") == ["vda"]
        assert await self.state(driver) is DomainState.RUNNING

    async def test_a_grown_disk_is_told_to_a_running_instance_only(
        self, driver: ComputeDriver
    ) -> None:
        await driver.spawn(spec())
        await driver.stop("i-1")
        await driver.resize_disk("i-1", "vda", 2 << 30)  # stopped: the next start sees it
        await driver.start("i-1")
        if (await driver.capabilities()).live_disk_attach:
            await driver.resize_disk("i-1", "vda", 2 << 30)
            await driver.resize_disk("i-1", "vda", 2 << 30)  # replay
            with pytest.raises(DriverError):
                await driver.resize_disk("i-1", "vdq", 2 << 30)
        else:
            with pytest.raises(OperationNotSupported):
                await driver.resize_disk("i-1", "vda", 2 << 30)
        assert await self.state(driver) is DomainState.RUNNING


class TestMemoryComputeDriver(DriverContract):
    @pytest.fixture
    async def driver(self, tmp_path: Path) -> AsyncIterator[ComputeDriver]:
        driver = MemoryComputeDriver()
        await driver.connect()
        yield driver
        await driver.close()

    def add_foreign_domain(self, driver: ComputeDriver, name: str) -> None:
        assert isinstance(driver, MemoryComputeDriver)
        driver.add_foreign_domain(name)

    def foreign_domain_exists(self, driver: ComputeDriver, name: str) -> bool:
        assert isinstance(driver, MemoryComputeDriver)
        return driver.has_domain(name)

    def destroy_outside(self, driver: ComputeDriver, instance_id: str) -> None:
        assert isinstance(driver, MemoryComputeDriver)
        driver.power_off_outside(instance_id, "destroyed")

    async def check_console(self, driver: ComputeDriver) -> None:
        # An echo: what is typed comes back; a second session takes the console over.
        first = await driver.open_console("i-1")
        assert await first.read() == b"virga-memory-console\r\n"
        await first.write(b"uname\r")
        assert await first.read() == b"uname\r"
        second = await driver.open_console("i-1")
        assert await first.read() == b""
        with pytest.raises(DriverError):
            await first.write(b"x")
        assert await second.read() == b"virga-memory-console\r\n"
        await second.close()
        assert await second.read() == b""


class TestMemoryComputeDriverWithoutHotplug(TestMemoryComputeDriver):
    @pytest.fixture
    async def driver(self, tmp_path: Path) -> AsyncIterator[ComputeDriver]:
        driver = MemoryComputeDriver(live_disk_attach=False)
        await driver.connect()
        yield driver
        await driver.close()


@pytest.mark.libvirt
class TestLibvirtDriver(DriverContract):
    """On libvirt's test hypervisor, which comes with its own running domain, 'test'."""

    side: Any
    """A plain libvirt connection to the same test hypervisor, playing 'someone else'."""

    @pytest.fixture
    async def driver(self, tmp_path: Path) -> AsyncIterator[ComputeDriver]:
        # Every test:///default connection in the process sees one hypervisor, reset when
        # the last one closes: this side connection and the driver's share it.
        self.side = libvirt.open(TEST_URI)
        try:
            assert [d.name() for d in self.side.listAllDomains(0)] == ["test"], "not fresh"
            async with LibvirtDriver(TEST_URI, instances_path=str(tmp_path)) as driver:
                yield driver
        finally:
            self.side.close()

    def add_foreign_domain(self, driver: ComputeDriver, name: str) -> None:
        xml = f"<domain type='test'><name>{name}</name><memory>65536</memory><os><type>hvm</type></os></domain>"  # noqa: E501 - fixed test data
        self.side.defineXML(xml).create()

    def foreign_domain_exists(self, driver: ComputeDriver, name: str) -> bool:
        return name in [dom.name() for dom in self.side.listAllDomains(0)]

    def destroy_outside(self, driver: ComputeDriver, instance_id: str) -> None:
        self.side.lookupByName(domain_name(instance_id)).destroy()

    async def check_console(self, driver: ComputeDriver) -> None:
        # The test hypervisor has no consoles (QEMU's: tests/e2e/test_consoles.py).
        with pytest.raises(OperationNotSupported):
            await driver.open_console("i-1")

    async def test_the_builtin_test_domain_is_ignored(self, driver: ComputeDriver) -> None:
        assert self.foreign_domain_exists(driver, "test")
        assert await driver.list_instances() == []
        assert await driver.usage() == []
