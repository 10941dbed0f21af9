"""qemu-img, bounded and sandboxed: even an image that slipped past the header check cannot
make it read a file of this host; it is killed past its time; it cannot write more than the
image's size; imports are counted and the spool is capped."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.support.qcow2 import qemu_img_create

from virga_storage.qemu_img import QemuImg, QemuImgFailed, QemuImgLimits, names_another_file
from virga_storage.spool import ImportSlots, SpoolBudget, SpoolFull

SECRET = b"TOP SECRET: the cluster's keyring\n"


def exploit(directory: Path, secret: Path) -> Path:
    """A qcow2 whose data file is `secret` (data_file_raw: the disk IS that file)."""
    image = directory / "upload"
    qemu_img_create(image, "64K", "-o", f"data_file={secret},data_file_raw=on")
    secret.write_bytes(SECRET)  # after: `create` truncates the file it names
    return image


async def test_the_sandbox_keeps_qemu_from_opening_a_data_file(tmp_path: Path) -> None:
    spool, outside = tmp_path / "spool", tmp_path / "host"
    spool.mkdir()
    outside.mkdir()
    exploit(spool, outside / "keyring")
    qemu = QemuImg(spool, QemuImgLimits(timeout_seconds=60))
    with pytest.raises(QemuImgFailed, match="keyring"):
        await qemu.convert_to_raw("upload", "upload.raw", 65536)
    assert not (spool / "upload.raw").exists() or SECRET not in (spool / "upload.raw").read_bytes()
    # What the sandbox stops: the same run without it copies the host's file into the image.
    bare = QemuImg(spool, QemuImgLimits(timeout_seconds=60, sandbox=False))
    await bare.convert_to_raw("upload", "upload.raw", 65536)
    assert (spool / "upload.raw").read_bytes().startswith(SECRET)


async def test_qemu_img_info_names_other_files_and_paths_stay_in_the_sandbox(
    tmp_path: Path,
) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(65536))
    qemu_img_create(tmp_path / "upload", "64K", "-b", str(base), "-F", "raw")
    info = await QemuImg(tmp_path, QemuImgLimits(sandbox=False)).info("upload")
    assert names_another_file(info)
    assert not names_another_file({"format-specific": {"data": {"compat": "1.1"}}})
    assert names_another_file({"format-specific": {"data": {"data-file": "/etc/ceph/x"}}})
    with pytest.raises(QemuImgFailed) as failed:
        await QemuImg(tmp_path, QemuImgLimits()).info("missing")
    assert str(tmp_path) not in str(failed.value)


async def test_a_conversion_cannot_write_more_than_the_declared_size(tmp_path: Path) -> None:
    qemu_img_create(tmp_path / "upload", "8M")
    with pytest.raises(QemuImgFailed):
        await QemuImg(tmp_path, QemuImgLimits()).convert_to_raw("upload", "upload.raw", 1 << 20)


async def test_qemu_img_past_its_time_is_killed(tmp_path: Path) -> None:
    qemu_img_create(tmp_path / "upload", "1M")
    qemu = QemuImg(tmp_path, QemuImgLimits(timeout_seconds=0.001))
    with pytest.raises(QemuImgFailed, match="took longer"):
        await qemu.info("upload")


def test_the_spool_budget_is_shared_and_given_back_whole() -> None:
    budget = SpoolBudget(100)
    with budget.lease() as first, budget.lease() as second:
        first.take(60)
        with pytest.raises(SpoolFull, match="60 of 100"):
            second.take(41)
        second.take(40)
        assert budget.used == 100
    assert budget.used == 0


async def test_an_import_waits_for_a_slot_and_gives_up_after_its_wait() -> None:
    slots = ImportSlots(1, wait_seconds=0.05)
    async with slots.hold() as first:
        assert first
        async with slots.hold() as second:
            assert not second
    async with slots.hold() as again:
        assert again
    released = asyncio.Event()

    async def holder() -> None:
        async with slots.hold():
            await released.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiter = ImportSlots(1, wait_seconds=5)  # a separate pool is not affected
    async with waiter.hold() as free:
        assert free
    released.set()
    await task
