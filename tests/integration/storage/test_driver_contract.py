"""One contract for every StorageDriver: each backend subclasses `DriverContract` once."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator

import pytest

from virga_devstack.ceph import CephCluster
from virga_storage.drivers.base import (
    BASE_SNAPSHOT,
    HasChildren,
    ImageExists,
    ImageInfo,
    ImageNotFound,
    ParentRef,
    ShrinkRefused,
    SnapshotInfo,
    SnapshotNotFound,
    StorageDriver,
    StorageUnavailable,
)
from virga_storage.drivers.memory import MemoryStorageDriver
from virga_storage.drivers.rbd import RbdDriver

MiB = 1 << 20
IMAGE_BYTES = b"virga boot image " * 4096  # 68 KiB, more than one chunk
PROTECTED_BASE = (SnapshotInfo(BASE_SNAPSHOT, protected=True),)


async def chunks(data: bytes, size: int = 16384) -> AsyncIterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


async def failing_chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data
    raise ConnectionResetError("image upload broke off")


class DriverContract(abc.ABC):
    """Behaviour every driver must show; subclasses provide `driver`, `pool` and `read`."""

    pool = "rbd"

    @pytest.fixture
    @abc.abstractmethod
    async def driver(self) -> AsyncIterator[StorageDriver]:
        yield MemoryStorageDriver()  # pragma: no cover - overridden

    @abc.abstractmethod
    async def read(self, driver: StorageDriver, name: str, offset: int, length: int) -> bytes:
        """The image's bytes, read through the backend (clones through their parent)."""

    async def imported(self, driver: StorageDriver, name: str = "img-1") -> None:
        await driver.import_image(name, chunks(IMAGE_BYTES), 4 * MiB)

    # -- import -----------------------------------------------------------------------------

    async def test_import_writes_the_image_and_protects_base(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        assert await driver.info("img-1") == ImageInfo("img-1", 4 * MiB, None, PROTECTED_BASE)
        assert await self.read(driver, "img-1", 0, len(IMAGE_BYTES)) == IMAGE_BYTES
        assert await self.read(driver, "img-1", len(IMAGE_BYTES), 16) == bytes(16)

    async def test_import_of_a_complete_image_is_done(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.import_image("img-1", chunks(b"other bytes"), 4 * MiB)
        assert await self.read(driver, "img-1", 0, len(IMAGE_BYTES)) == IMAGE_BYTES

    async def test_import_redoes_an_image_without_base(self, driver: StorageDriver) -> None:
        await driver.create_volume("img-1", MiB)  # what an interrupted import leaves
        await self.imported(driver)
        assert await driver.info("img-1") == ImageInfo("img-1", 4 * MiB, None, PROTECTED_BASE)

    async def test_import_of_too_much_data_leaves_nothing(self, driver: StorageDriver) -> None:
        with pytest.raises(ValueError, match="larger than its size"):
            await driver.import_image("img-1", chunks(IMAGE_BYTES), 1024)
        assert await driver.list() == []

    async def test_import_broken_off_leaves_nothing(self, driver: StorageDriver) -> None:
        with pytest.raises(ConnectionResetError):
            await driver.import_image("img-1", failing_chunks(IMAGE_BYTES), 4 * MiB)
        assert await driver.list() == []

    # -- clone ------------------------------------------------------------------------------

    async def test_clone_reads_the_image_bytes(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 8 * MiB)
        info = await driver.info("vol-1")
        assert info == ImageInfo("vol-1", 8 * MiB, ParentRef(self.pool, "img-1", "base"), ())
        assert str(info.parent) == f"{self.pool}/img-1@base"
        assert await self.read(driver, "vol-1", 0, len(IMAGE_BYTES)) == IMAGE_BYTES
        assert await driver.clone_depth("vol-1") == 1
        assert await driver.children("img-1", BASE_SNAPSHOT) == ["vol-1"]

    async def test_clone_twice_is_done(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        assert await driver.children("img-1", BASE_SNAPSHOT) == ["vol-1"]
        assert (await driver.info("vol-1")).size_bytes == 4 * MiB

    async def test_clone_over_another_image_is_refused(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.create_volume("vol-1", 4 * MiB)
        with pytest.raises(ImageExists, match="vol-1"):
            await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        assert (await driver.info("vol-1")).parent is None

    async def test_clone_of_a_missing_parent(self, driver: StorageDriver) -> None:
        with pytest.raises(ImageNotFound, match="img-9"):
            await driver.clone("img-9", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        await self.imported(driver)
        with pytest.raises(SnapshotNotFound, match="img-1@nope"):
            await driver.clone("img-1", "nope", "vol-1", 4 * MiB)
        assert await driver.list() == ["img-1"]

    async def test_clone_smaller_than_its_parent_is_refused(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        with pytest.raises(ShrinkRefused) as refused:
            await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", MiB)
        assert (refused.value.size_bytes, refused.value.requested_bytes) == (4 * MiB, MiB)
        assert await driver.list() == ["img-1"]

    async def test_clone_depth_counts_every_parent(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        await driver.snapshot("vol-1", "s1")
        await driver.clone("vol-1", "s1", "vol-2", 4 * MiB)
        assert await driver.clone_depth("img-1") == 0
        assert await driver.clone_depth("vol-2") == 2
        assert await self.read(driver, "vol-2", 0, len(IMAGE_BYTES)) == IMAGE_BYTES
        with pytest.raises(ImageNotFound):
            await driver.clone_depth("vol-9")

    # -- volumes ----------------------------------------------------------------------------

    async def test_create_volume_is_empty_and_idempotent(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", 2 * MiB)
        await driver.create_volume("vol-1", 2 * MiB)
        assert await driver.info("vol-1") == ImageInfo("vol-1", 2 * MiB, None, ())
        assert await self.read(driver, "vol-1", 0, 64) == bytes(64)
        assert await driver.list() == ["vol-1"]

    async def test_create_volume_over_a_clone_is_refused(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        with pytest.raises(ImageExists):
            await driver.create_volume("vol-1", 4 * MiB)

    async def test_resize_grows_and_refuses_to_shrink(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", 2 * MiB)
        await driver.resize("vol-1", 6 * MiB)
        await driver.resize("vol-1", 6 * MiB)
        assert (await driver.info("vol-1")).size_bytes == 6 * MiB
        with pytest.raises(ShrinkRefused, match="vol-1"):
            await driver.resize("vol-1", 2 * MiB)
        assert (await driver.info("vol-1")).size_bytes == 6 * MiB
        await driver.create_volume("vol-1", 2 * MiB)  # replayed create after the grow: done
        with pytest.raises(ImageNotFound):
            await driver.resize("vol-9", 6 * MiB)

    # -- snapshots, flatten -----------------------------------------------------------------

    async def test_snapshot_is_protected_and_idempotent(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", MiB)
        await driver.snapshot("vol-1", "s1")
        await driver.snapshot("vol-1", "s1")
        assert (await driver.info("vol-1")).snapshots == (SnapshotInfo("s1", protected=True),)
        with pytest.raises(ImageNotFound):
            await driver.snapshot("vol-9", "s1")

    async def test_flatten_removes_the_parent_link(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        await driver.flatten("vol-1")
        await driver.flatten("vol-1")
        assert (await driver.info("vol-1")).parent is None
        assert await driver.clone_depth("vol-1") == 0
        assert await driver.children("img-1", BASE_SNAPSHOT) == []
        await driver.remove("img-1")
        assert await self.read(driver, "vol-1", 0, len(IMAGE_BYTES)) == IMAGE_BYTES
        with pytest.raises(ImageNotFound):
            await driver.flatten("img-1")

    # -- removal ----------------------------------------------------------------------------

    async def test_remove_with_children_is_refused_naming_them(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-2", 4 * MiB)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        with pytest.raises(HasChildren) as refused:
            await driver.remove("img-1")
        assert refused.value.children == ["vol-1", "vol-2"]
        assert await driver.info("img-1") == ImageInfo("img-1", 4 * MiB, None, PROTECTED_BASE)
        assert await driver.children("img-1", BASE_SNAPSHOT) == ["vol-1", "vol-2"]

    async def test_remove_takes_snapshots_along_and_is_idempotent(
        self, driver: StorageDriver
    ) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        await driver.remove("vol-1")
        await driver.remove("img-1")
        await driver.remove("img-1")
        await driver.remove("never-existed")
        assert await driver.list() == []
        with pytest.raises(ImageNotFound):
            await driver.info("img-1")

    async def test_remove_snapshot_with_children_is_refused(self, driver: StorageDriver) -> None:
        await self.imported(driver)
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", 4 * MiB)
        with pytest.raises(HasChildren) as refused:
            await driver.remove_snapshot("img-1", BASE_SNAPSHOT)
        assert refused.value.children == ["vol-1"]
        assert (await driver.info("img-1")).snapshots == PROTECTED_BASE

    async def test_remove_snapshot_is_idempotent(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", MiB)
        await driver.snapshot("vol-1", "s1")
        await driver.remove_snapshot("vol-1", "s1")
        await driver.remove_snapshot("vol-1", "s1")
        await driver.remove_snapshot("vol-9", "s1")
        assert (await driver.info("vol-1")).snapshots == ()

    async def test_children_of_a_missing_snapshot(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", MiB)
        with pytest.raises(SnapshotNotFound):
            await driver.children("vol-1", "s1")
        with pytest.raises(ImageNotFound):
            await driver.children("vol-9", "s1")

    async def test_list_is_sorted(self, driver: StorageDriver) -> None:
        for name in ("vol-b", "vol-a", "img-1"):
            await driver.create_volume(name, MiB)
        assert await driver.list() == ["img-1", "vol-a", "vol-b"]

    @pytest.mark.parametrize("name", ["", "a/b", "a@b", "..", "with space"])
    async def test_bad_names_are_refused_before_any_effect(
        self, driver: StorageDriver, name: str
    ) -> None:
        with pytest.raises(ValueError, match="bad image name"):
            await driver.create_volume(name, MiB)
        with pytest.raises(ValueError, match="size must be positive"):
            await driver.create_volume("vol-1", 0)
        assert await driver.list() == []

    async def test_a_closed_driver_is_unavailable(self, driver: StorageDriver) -> None:
        await driver.create_volume("vol-1", MiB)
        await driver.close()
        await driver.close()
        with pytest.raises(StorageUnavailable):
            await driver.list()


class TestMemoryDriver(DriverContract):
    @pytest.fixture
    async def driver(self) -> AsyncIterator[StorageDriver]:
        driver = MemoryStorageDriver(self.pool)
        yield driver
        await driver.close()

    async def read(self, driver: StorageDriver, name: str, offset: int, length: int) -> bytes:
        assert isinstance(driver, MemoryStorageDriver)
        return driver.read(name, offset, length)


async def purge(driver: StorageDriver) -> None:
    """Remove every image of the pool, clones before their parents."""
    names = await driver.list()
    depths = {name: await driver.clone_depth(name) for name in names}
    for name in sorted(names, key=lambda name: -depths[name]):
        await driver.remove(name)


class TestRbdDriver(DriverContract):
    @pytest.fixture
    async def driver(self, ceph_cluster: CephCluster) -> AsyncIterator[StorageDriver]:
        rbd_driver = RbdDriver(ceph_cluster.conf_file, ceph_cluster.keyring, ceph_cluster.pool)
        await rbd_driver.connect()
        # Tests share the session's pool: each starts from empty. Ceph's memstore forgets
        # what the last test left once the session's cluster stops.
        await purge(rbd_driver)
        yield rbd_driver
        await rbd_driver.close()

    async def read(self, driver: StorageDriver, name: str, offset: int, length: int) -> bytes:
        assert isinstance(driver, RbdDriver)
        return await driver.read(name, offset, length)
