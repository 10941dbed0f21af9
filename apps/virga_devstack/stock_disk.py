"""A BIOS-bootable disk from a root tree, without loop devices or mounts.

`mkfs.ext4 -d` writes the tree into a partition image, `sfdisk` writes an MBR with one
bootable partition at 1 MiB into a sparse raw disk, the partition image is copied in at its
offset, and GRUB goes in by hand: its `boot.img` into the MBR's code area and its `core.img`
(made by `grub-mkimage` inside the tree, with `biosdisk part_msdos ext2` and the prefix
`(hd0,msdos1)/boot/grub`) into the gap between the MBR and the partition, where `boot.img`
looks for it by default. `qemu-img convert -c` makes the compressed qcow2.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Final

from virga_devstack.localproc import tail

SECTOR: Final = 512
PARTITION_START: Final = 2048
"""First sector of the root partition (1 MiB); core.img must fit before it."""
MBR_CODE: Final = 440
"""Bytes of boot code in the MBR: the disk signature and the partition table follow."""
CHUNK: Final = 1 << 20


class StockDiskError(RuntimeError):
    """A tool failed; the message holds its output."""


def _run(*command: str, stdin: str | None = None) -> None:
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, timeout=1800, check=False
    )
    if result.returncode != 0:
        raise StockDiskError(f"`{' '.join(command)}` failed: {tail(result.stdout + result.stderr)}")


def partition_table(disk_mib: int) -> str:
    """sfdisk's script for the disk: a DOS label, one bootable Linux partition at 1 MiB."""
    sectors = disk_mib * (1 << 20) // SECTOR - PARTITION_START
    return (
        "label: dos\nlabel-id: 0x56697267\n"
        f"start={PARTITION_START}, size={sectors}, type=83, bootable\n"
    )


def _copy_sparse(source: Path, target: Path, offset: int) -> None:
    """Copy `source` into `target` at `offset`, leaving its all-zero MiBs as holes."""
    with source.open("rb") as reader, target.open("r+b") as writer:
        position = offset
        while chunk := reader.read(CHUNK):
            if chunk.count(0) != len(chunk):
                writer.seek(position)
                writer.write(chunk)
            position += len(chunk)


def install_grub(raw: Path, boot_img: bytes, core_img: bytes) -> None:
    """GRUB's boot sector code into the MBR (its table kept), core.img from sector 1."""
    if len(core_img) > (PARTITION_START - 1) * SECTOR:
        raise StockDiskError(f"core.img is {len(core_img)} bytes: it does not fit before 1 MiB")
    with raw.open("r+b") as disk:
        disk.write(boot_img[:MBR_CODE])
        disk.seek(SECTOR)
        disk.write(core_img)


def assemble(rootfs: Path, qcow2: Path, work: Path, *, disk_mib: int, root_uuid: str) -> None:
    """Write the bootable compressed qcow2 of `rootfs` (whose /boot/grub is ready)."""
    grub = rootfs / "boot" / "grub" / "i386-pc"
    boot_img, core_img = (grub / "boot.img").read_bytes(), (grub / "core.img").read_bytes()
    part = work / "root.ext4"
    part_mib = disk_mib - PARTITION_START * SECTOR // (1 << 20)
    _run(
        "mkfs.ext4", "-q", "-F", "-d", str(rootfs), "-U", root_uuid, "-L", "root",
        "-E", "root_owner=0:0", str(part), f"{part_mib}M",
    )  # fmt: skip
    raw = work / "disk.raw"
    with raw.open("wb") as disk:
        disk.truncate(disk_mib << 20)
    _run(
        "sfdisk",
        "--quiet",
        "--no-reread",
        "--no-tell-kernel",
        str(raw),
        stdin=partition_table(disk_mib),
    )
    _copy_sparse(part, raw, PARTITION_START * SECTOR)
    part.unlink()
    install_grub(raw, boot_img, core_img)
    _run("qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(qcow2))
    raw.unlink()
