"""A tiny Linux guest for real-QEMU tests: Debian's cloud kernel and a busybox initramfs.

Firmware alone runs in QEMU, but a guest without an operating system never answers a PCI
hot-unplug, so a live volume detach would never finish. This guest boots in a few seconds under
TCG, handles ACPI hot-plug in the kernel, loads the virtio block driver, and reports on its
serial console the disks it sees with their serials (`virga-disks: vda=<serial> vdb=...`)
whenever they change, so a test can check what the guest itself sees. Its parts come from Debian's
packages, fetched with `apt-get download` and unpacked with `dpkg-deb` into a cache outside
the repository (nothing is installed on the machine), and the initramfs is written here as a
newc cpio archive.

The functions here block; from async code, call them with ``asyncio.to_thread``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from virga_devstack.kafka import default_cache_root
from virga_devstack.localproc import exclusive

KERNEL_PACKAGE: Final = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE: Final = "busybox-static"
READY_LINE: Final = "virga-guest-ready"
"""What the guest prints on its serial console once its init runs."""
DISKS_PREFIX: Final = "virga-disks:"
"""Start of the console line listing the guest's disks."""
# In load order: each needs only the ones before it.
MODULES: Final = (
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_pci_legacy_dev.ko",
    "drivers/virtio/virtio_pci_modern_dev.ko",
    "drivers/virtio/virtio_pci.ko",
    "drivers/block/virtio_blk.ko",
)

INIT: Final = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for module in /modules/*.ko; do insmod "$module"; done
echo {READY_LINE} > /dev/ttyS0
last=""
while true; do
  now=""
  for disk in /sys/block/vd*; do
    [ -e "$disk" ] && now="$now $(basename "$disk")=$(cat "$disk/serial" 2>/dev/null)"
  done
  if [ "$now" != "$last" ]; then echo "{DISKS_PREFIX}$now" > /dev/ttyS0; last="$now"; fi
  sleep 0.2
done
"""


class GuestError(RuntimeError):
    """The guest's parts could not be fetched or built; says why."""


@dataclass(frozen=True, slots=True)
class GuestBoot:
    """Files for a direct kernel boot."""

    kernel: Path
    initrd: Path
    cmdline: str = "console=ttyS0 panic=-1 quiet"


def _run(*command: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GuestError(f"{command[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise GuestError(f"{' '.join(command)} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _kernel_package() -> str:
    """The versioned kernel package the cloud metapackage points at."""
    for line in _run("apt-cache", "depends", KERNEL_PACKAGE).splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if name.startswith("linux-image-") and name != KERNEL_PACKAGE:
            return name
    raise GuestError(f"apt knows no kernel behind {KERNEL_PACKAGE} (run apt-get update)")


def _unpack(package: str, into: Path, work: Path) -> None:
    _run("apt-get", "download", package, cwd=work)
    [deb] = work.glob(f"{package.split('=')[0]}_*.deb")
    _run("dpkg-deb", "-x", str(deb), str(into))


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries, as the kernel unpacks an initramfs."""
    out = bytearray()

    def add(name: str, mode: int, data: bytes, ino: int) -> None:
        encoded = name.encode() + b"\0"
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0)
        out.extend(b"070701" + b"".join(b"%08X" % value for value in fields) + encoded)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data) in enumerate(entries, start=1):
        add(name, mode, data, ino)
    add("TRAILER!!!", 0, b"", 0)
    return bytes(out)


def ensure_guest(cache_root: Path | None = None) -> GuestBoot:
    """The guest's kernel and initramfs, fetched and built once per kernel version."""
    root = cache_root or default_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    with exclusive(root / "guest.lock"):
        package = _kernel_package()
        home = root / f"guest-{package}"
        boot = GuestBoot(home / "vmlinuz", home / "initrd.cpio")
        if boot.kernel.is_file() and boot.initrd.is_file():
            return boot
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            work = Path(scratch)
            _unpack(package, work / "kernel", work)
            _unpack(BUSYBOX_PACKAGE, work / "busybox", work)
            [vmlinuz] = (work / "kernel" / "boot").glob("vmlinuz-*")
            [modules] = (work / "kernel" / "lib" / "modules").iterdir()
            busybox = (work / "busybox" / "bin" / "busybox").read_bytes()
            entries = [
                ("bin", 0o040755, b""),
                ("bin/busybox", 0o100755, busybox),
                ("init", 0o100755, INIT.encode()),
                ("modules", 0o040755, b""),
            ]
            for n, module in enumerate(MODULES):
                data = (modules / "kernel" / module).read_bytes()
                entries.append((f"modules/{n}-{Path(module).name}", 0o100644, data))
            initrd = cpio_newc(entries)
            staging = work / "out"
            staging.mkdir()
            shutil.copyfile(vmlinuz, staging / "vmlinuz")
            (staging / "initrd.cpio").write_bytes(initrd)
            if home.exists():
                shutil.rmtree(home)
            staging.rename(home)
        return boot


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    boot = ensure_guest(args.cache_dir)
    print(f"guest: kernel {boot.kernel}, initrd {boot.initrd}")


if __name__ == "__main__":
    main()
