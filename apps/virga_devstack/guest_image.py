"""Virga's own tiny guest image: Debian's cloud kernel, a busybox initramfs, a bootable raw disk.

`python -m virga_devstack guest-image build` fetches `linux-image-*-cloud-amd64` and
`busybox-static` with `apt-get download` (nothing is installed on the host), unpacks them
with `dpkg-deb -x`, and writes `virga-guest.raw` into `<cache>/guest-image/<key>/`, where the
key hashes every input: the packages' versions, syslinux's boot code, this builder's /init.
A second build with the same inputs returns the cached image at once.

The guest's /init reads its address from QEMU's fw_cfg (see
`virga_compute.drivers.guest_network`), configures its NIC, answers ping and HTTP on port 80,
prints ``virga-guest: up <ip>`` on the serial console and powers off on the ACPI button.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from virga_devstack import bootdisk, initramfs
from virga_devstack.localproc import default_cache_root, exclusive

KERNEL_METAPACKAGE: Final = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE: Final = "busybox-static"
BUILDER_VERSION: Final = "1"
"""Bumped when the image's layout changes in a way the other inputs do not show."""
DISK_MIB: Final = 64
DISK_NAME: Final = "virga-guest.raw"
READY_PREFIX: Final = "virga-guest: up"
"""What the guest prints on its serial console once its NIC is configured."""
SYSLINUX_CFG: Final = """\
DEFAULT virga
PROMPT 0
TIMEOUT 0
LABEL virga
  LINUX /VMLINUZ
  INITRD /INITRD.IMG
  APPEND console=tty0 console=ttyS0,115200 panic=5 quiet
"""


class GuestImageError(RuntimeError):
    """The image could not be built; the message says what to install or run."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the image is made from, hashed into its cache key."""

    kernel_package: str
    """e.g. 'linux-image-6.1.0-56-cloud-amd64'."""
    kernel_version: str
    """Debian version of that package."""
    busybox_version: str
    """Debian version of busybox-static."""
    syslinux_sha256: str
    """Hash of syslinux's MBR code and of the installer, which carries the boot sector."""
    init_sha256: str
    """Hash of /init, the power button script and the module list."""
    builder: str = BUILDER_VERSION

    def key(self) -> str:
        encoded = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class GuestImage:
    """A built image and the files next to it."""

    directory: Path
    inputs: Inputs

    @property
    def disk(self) -> Path:
        """The raw bootable disk: what Virga imports as an image and clones per instance."""
        return self.directory / DISK_NAME

    @property
    def kernel(self) -> Path:
        """The same kernel, for a direct kernel boot (`<os><kernel>`)."""
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


def _apt(*command: str, cwd: Path | None = None) -> str:
    if shutil.which(command[0]) is None:
        raise GuestImageError(f"{command[0]} not found: the guest image is built on Debian")
    result = subprocess.run(
        command, capture_output=True, text=True, cwd=cwd, check=False, timeout=600
    )
    if result.returncode != 0:
        raise GuestImageError(
            f"`{' '.join(command)}` failed (exit {result.returncode}): "
            f"{(result.stdout + result.stderr).strip()[-2000:]}"
        )
    return result.stdout


def _candidates(*packages: str) -> dict[str, str]:
    """The versions apt would fetch for `packages` (one apt-cache call: each takes seconds)."""
    found: dict[str, str] = {}
    package = ""
    for line in _apt("apt-cache", "policy", *packages).splitlines():
        if not line.startswith(" "):
            package = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            version = line.split(":", 1)[1].strip()
            if version and version != "(none)":
                found[package] = version
    for package in packages:
        if package not in found:
            raise GuestImageError(
                f"apt knows no version of {package}: run `apt-get update` (as root) first"
            )
    return found


def _kernel_package() -> str:
    for line in _apt("apt-cache", "depends", KERNEL_METAPACKAGE).splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    raise GuestImageError(f"{KERNEL_METAPACKAGE} depends on no kernel: run `apt-get update`")


def _sha256(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def resolve_inputs() -> Inputs:
    """The inputs of the image apt would build today (local look-ups, no download).

    As root, apt's package lists are fetched once when they do not know the packages yet
    (a fresh machine); as another user that is left to the message.
    """
    try:
        return _resolve_inputs()
    except GuestImageError:
        if os.geteuid() != 0:
            raise
    _apt("apt-get", "update")
    return _resolve_inputs()


def _resolve_inputs() -> Inputs:
    if missing := bootdisk.missing_tools():
        raise GuestImageError(
            f"{', '.join(missing)} not found: apt-get install {' '.join(bootdisk.PACKAGES)}"
        )
    kernel = _kernel_package()
    versions = _candidates(kernel, BUSYBOX_PACKAGE)
    syslinux = shutil.which("syslinux") or "syslinux"
    return Inputs(
        kernel_package=kernel,
        kernel_version=versions[kernel],
        busybox_version=versions[BUSYBOX_PACKAGE],
        syslinux_sha256=_sha256(bootdisk.MBR_BIN.read_bytes(), Path(syslinux).read_bytes()),
        init_sha256=_sha256(
            initramfs.INIT.encode(),
            initramfs.POWER_BUTTON.encode(),
            " ".join(initramfs.WANTED_MODULES).encode(),
            SYSLINUX_CFG.encode(),
        ),
    )


def image_root(cache_root: Path | None = None) -> Path:
    return (cache_root or default_cache_root()) / "guest-image"


def cached(inputs: Inputs, cache_root: Path | None = None) -> GuestImage | None:
    image = GuestImage(image_root(cache_root) / inputs.key(), inputs)
    return image if (image.directory / "manifest.json").is_file() else None


def build(cache_root: Path | None = None, *, log: bool = False) -> GuestImage:
    """The image for today's inputs, built into the cache unless it is there already."""
    inputs = resolve_inputs()
    root = image_root(cache_root)
    with exclusive(root / ".lock"):
        if (image := cached(inputs, cache_root)) is not None:
            return image
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as scratch:
            work = Path(scratch)
            _build_into(work / "image", work, inputs, log)
            final = root / inputs.key()
            shutil.rmtree(final, ignore_errors=True)
            (work / "image").rename(final)
        # Images of older inputs (a previous kernel) are not used again: free their space.
        for stale in root.iterdir():
            if stale.is_dir() and stale != final and not stale.name.startswith("."):
                shutil.rmtree(stale, ignore_errors=True)
        if log:
            print(f"guest image built in {time.monotonic() - began:.1f} s", flush=True)
        return GuestImage(final, inputs)


def _unpack(package: str, version: str, work: Path, log: bool) -> Path:
    """Download one .deb with apt-get and extract it (no install); return the tree."""
    if log:
        print(f"  fetching {package} {version}", flush=True)
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    _apt("apt-get", "download", f"{package}={version}", cwd=debs)
    [deb] = [p for p in debs.glob(f"{package}_*.deb")]
    tree = work / package
    _apt("dpkg-deb", "-x", str(deb), str(tree))
    return tree


def _build_into(target: Path, work: Path, inputs: Inputs, log: bool) -> None:
    kernel_tree = _unpack(inputs.kernel_package, inputs.kernel_version, work, log)
    busybox_tree = _unpack(BUSYBOX_PACKAGE, inputs.busybox_version, work, log)
    release = inputs.kernel_package.removeprefix("linux-image-")
    [vmlinuz] = list((kernel_tree / "boot").glob(f"vmlinuz-{release}"))
    modules = kernel_tree / "lib" / "modules" / release
    target.mkdir()
    shutil.copyfile(vmlinuz, target / "vmlinuz")
    if log:
        print("  packing the initramfs", flush=True)
    busybox = (busybox_tree / "bin" / "busybox").read_bytes()
    (target / "initrd.img").write_bytes(initramfs.build(busybox, modules))
    if log:
        print(f"  writing the {DISK_MIB} MiB bootable disk", flush=True)
    bootdisk.build(
        target / DISK_NAME,
        {"VMLINUZ": target / "vmlinuz", "INITRD.IMG": target / "initrd.img"},
        SYSLINUX_CFG,
        DISK_MIB,
    )
    manifest = {
        "inputs": asdict(inputs),
        "sha256": {
            name: hashlib.sha256((target / name).read_bytes()).hexdigest()
            for name in (DISK_NAME, "vmlinuz", "initrd.img")
        },
    }
    # Written last: its presence is what marks the directory as complete.
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "path"])
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $VIRGA_CACHE_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            image = build(args.cache_dir, log=True)
        else:
            found = cached(resolve_inputs(), args.cache_dir)
            if found is None:
                print("guest image: not built yet (run `guest-image build`)", file=sys.stderr)
                return 1
            image = found
    except (GuestImageError, bootdisk.BootDiskError) as error:
        print(f"guest image: {error}", file=sys.stderr)
        return 1
    print(image.disk)
    return 0
