"""qcow2 files made by the real qemu-img, for the tests of image uploads."""

from __future__ import annotations

import subprocess
from pathlib import Path


def qemu_img_create(path: Path, size: str, *options: str) -> bytes:
    """`qemu-img create -f qcow2 [options] path size`; the file's bytes. Beware: an option
    naming a data file makes qemu-img truncate that file."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", *options, str(path), size], check=True
    )
    return path.read_bytes()
