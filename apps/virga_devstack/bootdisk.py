"""A raw, BIOS-bootable disk image made without root: an MBR, one FAT partition, syslinux.

mkfs.fat writes the filesystem at the partition's offset inside the image file, mtools
copies the files in, syslinux (its mtools flavour) installs its boot sector and loader there,
and the MBR (syslinux's mbr.bin plus one active partition) is written last. No loop device,
no mount.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Final

SECTOR: Final = 512
PARTITION_START: Final = 2048
"""First sector of the partition: 1 MiB, the usual alignment."""
MBR_BIN: Final = Path("/usr/lib/syslinux/mbr/mbr.bin")
TOOLS: Final = ("mkfs.fat", "mcopy", "syslinux")
PACKAGES: Final = ("syslinux", "syslinux-common", "mtools", "dosfstools")
# Fixed rather than random or time-derived, so that the same inputs give the same image.
VOLUME_ID: Final = "56697267"
DISK_SIGNATURE: Final = 0x56697267
EPOCH: Final = 946684800
"""2000-01-01: FAT cannot store times before 1980; every file gets this mtime."""


class BootDiskError(RuntimeError):
    """A tool is missing or failed; the message says which and why."""


def missing_tools() -> list[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if not MBR_BIN.is_file():
        missing.append(str(MBR_BIN))
    return missing


def _chs(lba: int) -> bytes:
    """The 3-byte CHS address of an LBA sector (255 heads, 63 sectors), capped as usual."""
    cylinder, rest = divmod(lba, 255 * 63)
    if cylinder > 1023:
        return b"\xfe\xff\xff"
    head, sector = divmod(rest, 63)
    return bytes((head, ((sector + 1) & 0x3F) | ((cylinder >> 2) & 0xC0), cylinder & 0xFF))


def mbr(total_sectors: int, boot_code: bytes) -> bytes:
    """Sector 0: boot code, a fixed disk signature, one active FAT32 (LBA) partition."""
    count = total_sectors - PARTITION_START
    entry = (
        b"\x80" + _chs(PARTITION_START) + b"\x0c" + _chs(total_sectors - 1)
        + struct.pack("<II", PARTITION_START, count)
    )  # fmt: skip
    table = entry + b"\0" * 48
    return (
        boot_code[:440].ljust(440, b"\0")
        + struct.pack("<IH", DISK_SIGNATURE, 0)
        + table
        + (b"\x55\xaa")
    )


def _run(*command: str, env: Mapping[str, str] | None = None) -> None:
    result = subprocess.run(
        command, capture_output=True, text=True, check=False, env=env, timeout=120
    )
    if result.returncode != 0:
        raise BootDiskError(
            f"`{' '.join(command)}` failed (exit {result.returncode}): "
            f"{(result.stdout + result.stderr).strip()}"
        )


def build(target: Path, files: Mapping[str, Path], syslinux_cfg: str, size_mib: int = 64) -> None:
    """Write a bootable raw disk of `size_mib` MiB to `target` holding `files` (name → source).

    The names are those syslinux.cfg refers to (8.3 names keep it simple: VMLINUZ, INITRD.IMG).
    """
    if missing := missing_tools():
        raise BootDiskError(f"{', '.join(missing)} not found: apt-get install {' '.join(PACKAGES)}")
    total = size_mib * 1024 * 1024 // SECTOR
    offset = PARTITION_START * SECTOR
    target.unlink(missing_ok=True)
    with target.open("wb") as disk:
        disk.truncate(total * SECTOR)
    # FAT32 (a FAT16 of this size would do, but FAT32 keeps working when the image grows).
    _run(
        "mkfs.fat", "-F", "32", "--invariant", "-i", VOLUME_ID, "-n", "VIRGA",
        f"--offset={PARTITION_START}", "-h", str(PARTITION_START), "--mbr=n",
        str(target), str((total - PARTITION_START) * SECTOR // 1024),
    )  # fmt: skip
    # mtools takes the partition's byte offset after '@@'; SOURCE_DATE_EPOCH fixes the
    # timestamps it would otherwise take from the clock.
    image = f"{target}@@{offset}"
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(EPOCH), "MTOOLS_SKIP_CHECK": "1", "TZ": "UTC"}
    staging = target.parent / f".{target.name}.files"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        (staging / "SYSLINUX.CFG").write_text(syslinux_cfg)
        for name, source in files.items():
            shutil.copyfile(source, staging / name)
        for path in staging.iterdir():
            os.utime(path, (EPOCH, EPOCH))
        _run("mcopy", "-m", "-i", image, *sorted(str(p) for p in staging.iterdir()), "::/",
             env=env)  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _run("syslinux", "--install", "--offset", str(offset), str(target), env=env)
    with target.open("r+b") as disk:
        disk.write(mbr(total, MBR_BIN.read_bytes()))
