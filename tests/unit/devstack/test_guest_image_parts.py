"""Pieces of the guest image that need no download: the cpio archive, the MBR, the cache key."""

from __future__ import annotations

import dataclasses
import gzip
import struct

from virga_devstack import bootdisk, guest_image, initramfs


def _members(archive: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """name → (mode, data, rdev), read back as the kernel reads a "newc" archive."""
    members: dict[str, tuple[int, bytes, tuple[int, int]]] = {}
    offset = 0
    while True:
        header = archive[offset : offset + 110]
        assert header[:6] == b"070701"
        fields = [int(header[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        assert fields[2] == fields[3] == fields[5] == 0  # owner root, mtime 0
        offset += 110
        name = archive[offset : offset + namesize - 1].decode()
        offset += namesize + (-(110 + namesize) % 4)
        data = archive[offset : offset + size]
        offset += size + (-size % 4)
        if name == "TRAILER!!!":
            return members
        members[name] = (mode, data, rdev)


def test_the_archive_holds_files_links_and_device_nodes_the_kernel_unpacks() -> None:
    archive = initramfs.cpio_newc(
        [
            initramfs.directory("bin"),
            initramfs.file("init", b"#!/bin/sh\n", executable=True),
            initramfs.Entry("bin/sh", 0o120777, b"busybox"),
            initramfs.char_device("dev/console", 5, 1),
        ]
    )
    assert len(archive) % 4 == 0
    members = _members(archive)
    assert members["init"] == (0o100755, b"#!/bin/sh\n", (0, 0))
    assert members["bin/sh"] == (0o120777, b"busybox", (0, 0))
    assert members["dev/console"][0] == 0o020600
    assert members["dev/console"][2] == (5, 1)
    assert members["bin"][0] == 0o040755


def test_init_reads_the_fw_cfg_file_the_compute_side_writes() -> None:
    from virga_compute.drivers.guest_network import FW_CFG_NAME

    assert f"/sys/firmware/qemu_fw_cfg/by_name/{FW_CFG_NAME}/raw" in initramfs.INIT
    assert 'say "$ready"' in initramfs.INIT
    assert "up ${ip%/*}" in initramfs.INIT


def test_gzip_output_is_the_same_bytes_each_time() -> None:
    entries = [initramfs.file("a", b"x" * 1000)]
    first = gzip.compress(initramfs.cpio_newc(entries), mtime=0)
    assert first == gzip.compress(initramfs.cpio_newc(entries), mtime=0)


def test_the_mbr_has_one_active_fat32_partition_from_1_mib_to_the_end() -> None:
    sector = bootdisk.mbr(64 * 2048, b"\xfa" * 440)
    assert len(sector) == 512
    assert sector[510:] == b"\x55\xaa"
    assert sector[:440] == b"\xfa" * 440
    status, kind = sector[446], sector[450]
    start, count = struct.unpack_from("<II", sector, 454)
    assert (status, kind, start, count) == (0x80, 0x0C, 2048, 64 * 2048 - 2048)
    assert sector[462:510] == b"\0" * 48  # no other partition


def test_the_cache_key_changes_with_any_input() -> None:
    inputs = guest_image.Inputs("linux-image-6.1.0-1-cloud-amd64", "6.1.1-1", "1:1.35", "a", "b")
    assert inputs.key() == dataclasses.replace(inputs).key()
    for field in dataclasses.fields(inputs):
        changed = dataclasses.replace(inputs, **{field.name: "other"})
        assert changed.key() != inputs.key(), field.name
