"""The in-memory storage driver's test hooks: a failing call, a full pool, an outage."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from virga_storage.drivers.base import BASE_SNAPSHOT, PoolFull, StorageError, StorageUnavailable
from virga_storage.drivers.memory import MemoryStorageDriver

MiB = 1 << 20


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_fail_next_fails_once_and_changes_nothing() -> None:
    driver = MemoryStorageDriver()
    driver.fail_next("create_volume", StorageError("injected"))
    with pytest.raises(StorageError, match="injected"):
        await driver.create_volume("vol-1", MiB)
    assert await driver.list() == []
    await driver.create_volume("vol-1", MiB)
    assert await driver.list() == ["vol-1"]


async def test_a_full_pool_refuses_writes_but_not_reads_or_removal() -> None:
    driver = MemoryStorageDriver()
    await driver.import_image("img-1", one_chunk(b"data"), MiB)
    driver.set_pool_full(True)
    with pytest.raises(PoolFull):
        await driver.clone("img-1", BASE_SNAPSHOT, "vol-1", MiB)
    with pytest.raises(PoolFull):
        await driver.resize("img-1", 2 * MiB)
    assert (await driver.info("img-1")).size_bytes == MiB
    await driver.remove("img-1")
    driver.set_pool_full(False)
    await driver.create_volume("vol-1", MiB)
    assert await driver.list() == ["vol-1"]


async def test_an_unavailable_cluster_fails_every_call_until_back() -> None:
    driver = MemoryStorageDriver()
    await driver.create_volume("vol-1", MiB)
    driver.set_available(False)
    with pytest.raises(StorageUnavailable):
        await driver.list()
    with pytest.raises(StorageUnavailable):
        await driver.remove("vol-1")
    driver.set_available(True)
    assert await driver.list() == ["vol-1"]


async def test_read_beyond_the_written_data_is_zeros() -> None:
    driver = MemoryStorageDriver()
    await driver.import_image("img-1", one_chunk(b"abc"), 8)
    assert driver.read("img-1", 1, 100) == b"bc" + bytes(5)
