"""Virga's guest image booted straight from its kernel and initramfs, for real-QEMU tests.

Firmware alone runs in QEMU, but a guest without an operating system never answers a PCI
hot-unplug, so a live volume detach would never finish. This is the guest image of
`guest_image` (Debian's cloud kernel and a busybox initramfs, built once and cached) without
its boot disk: it boots in a few seconds under TCG, handles ACPI hot-plug in the kernel, and
reports on its serial console the disks it sees with their serials (`virga-disks: vda=<serial>
vdb=...`) whenever they change, so a test can check what the guest itself sees.

The functions here block; from async code, call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from virga_devstack import guest_image

READY_LINE: Final = guest_image.READY_PREFIX
"""What the guest prints on its serial console once its init has run."""
DISKS_PREFIX: Final = "virga-disks:"
"""Start of the console line listing the guest's disks."""


@dataclass(frozen=True, slots=True)
class GuestBoot:
    """Files for a direct kernel boot."""

    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1 quiet"


def ensure_guest(cache_root: Path | None = None) -> GuestBoot:
    """The guest image's kernel and initramfs, built into the cache unless they are there."""
    image = guest_image.build(cache_root)
    return GuestBoot(image.kernel, image.initrd)
