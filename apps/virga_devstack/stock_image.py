"""A genuine Debian 12 cloud image, built here from Debian's packages and cached by its inputs.

`python -m virga_devstack image build debian-12 [--output PATH]` runs `mmdebstrap` (Debian's
own `cloud-init`, `openssh-server`, `qemu-guest-agent`, the cloud kernel), customises the tree
as Debian's official cloud images are (login user `debian` with sudo, host keys removed,
machine-id emptied), and writes a bootable qcow2 without loop devices or mounts
(`stock_disk`). The result lives in `<cache>/images/debian-12/<key>/`, where the key hashes
every input: the package list, the customisation script, the GRUB configuration, the disk
size, this builder's version and the sha256 of the apt sources' InRelease files this machine
last fetched. A second build with the same inputs returns the cached image at once.
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
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from virga_devstack import stock_disk
from virga_devstack.localproc import default_cache_root, exclusive, tail

BUILDER_VERSION: Final = "1"
"""Bumped when the build changes in a way the other inputs do not show."""
NAME: Final = "debian-12"
SUITE: Final = "bookworm"
MIRROR: Final = "http://deb.debian.org/debian"
SECURITY_MIRROR: Final = "http://deb.debian.org/debian-security"
DISK_MIB: Final = 2048
ROOT_UUID: Final = "8e5b2c7a-5f4e-4c1e-9a51-7669726761ff"
"""The root filesystem's UUID, fixed: fstab and GRUB name it, the same in every instance."""
TOOLS: Final = ("mmdebstrap", "mkfs.ext4", "sfdisk", "qemu-img")
HOST_PACKAGES: Final = ("mmdebstrap", "e2fsprogs", "fdisk", "qemu-utils")
PACKAGES: Final = (
    "linux-image-cloud-amd64",
    "initramfs-tools",
    "cloud-init",
    "cloud-guest-utils",
    "openssh-server",
    "qemu-guest-agent",
    "systemd-sysv",
    "udev",
    "dbus",
    "sudo",
    "netplan.io",
    "systemd-resolved",
    "isc-dhcp-client",
    "iproute2",
    "iputils-ping",
    "curl",
    "procps",
    "ca-certificates",
    "e2fsprogs",
    "grub-pc-bin",
    "locales",
)
DATASOURCES: Final = ("NoCloud", "ConfigDrive", "OpenStack", "None")
"""cloud-init's datasource_list: a `cidata` or `config-2` drive, then the metadata service at
169.254.169.254 (cloud-init's OpenStack datasource, which also reads the EC2 layout)."""
CUSTOMIZE: Final = f"""\
set -eu
root="$1"
echo localhost > "$root/etc/hostname"
printf '127.0.0.1 localhost\\n::1 localhost ip6-localhost ip6-loopback\\n' > "$root/etc/hosts"
echo 'UUID={ROOT_UUID} / ext4 rw,discard,errors=remount-ro 0 1' > "$root/etc/fstab"
printf 'datasource_list: [{", ".join(DATASOURCES)}]\\n' \\
    > "$root/etc/cloud/cloud.cfg.d/99_virga_datasources.cfg"
sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' "$root/etc/locale.gen"
chroot "$root" locale-gen
echo 'LANG=en_US.UTF-8' > "$root/etc/default/locale"
chroot "$root" systemctl enable systemd-networkd systemd-resolved
mkdir -p "$root/boot/grub/i386-pc"
cp "$root"/usr/lib/grub/i386-pc/*.mod "$root"/usr/lib/grub/i386-pc/*.lst \\
    "$root"/usr/lib/grub/i386-pc/boot.img "$root/boot/grub/i386-pc/"
chroot "$root" grub-mkimage -O i386-pc -o /boot/grub/i386-pc/core.img \\
    -p '(hd0,msdos1)/boot/grub' biosdisk part_msdos ext2
kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -n 1)
cat > "$root/boot/grub/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=1
set root=(hd0,msdos1)
menuentry 'Debian GNU/Linux 12' {{
  linux /boot/$kernel root=UUID={ROOT_UUID} ro console=tty0 console=ttyS0,115200n8
  initrd /boot/initrd.img-${{kernel#vmlinuz-}}
}}
EOF
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/cloud/*
chroot "$root" apt-get clean
ln -sf ../run/systemd/resolve/stub-resolv.conf "$root/etc/resolv.conf"
"""
"""Run by mmdebstrap on the finished tree (`$1`); its text is part of the cache key."""


class StockImageError(RuntimeError):
    """The image could not be built; the message says what to install or what failed."""


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything the image is made from, hashed into its cache key."""

    name: str
    suite: str
    sources: tuple[str, ...]
    packages: tuple[str, ...]
    customize_sha256: str
    disk_mib: int
    releases: dict[str, str]
    """apt list file name → sha256 of this machine's copy ('' when apt never fetched it)."""
    builder: str = BUILDER_VERSION

    def key(self) -> str:
        encoded = json.dumps(asdict(self), sort_keys=True).encode()
        return hashlib.sha256(encoded).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class StockImage:
    directory: Path
    inputs: Inputs

    @property
    def disk(self) -> Path:
        """The compressed qcow2: what `make up` uploads as the public image."""
        return self.directory / f"{self.inputs.name}.qcow2"

    @property
    def manifest(self) -> Path:
        return self.directory / "manifest.json"

    def sha256(self) -> str:
        digest: str = json.loads(self.manifest.read_text())["sha256"]
        return digest


def sources() -> tuple[str, ...]:
    """The apt sources the image is built from: `$VIRGA_DEBIAN_MIRROR` (default MIRROR) and
    `$VIRGA_DEBIAN_SECURITY_MIRROR` (default SECURITY_MIRROR)."""
    mirror = os.environ.get("VIRGA_DEBIAN_MIRROR", MIRROR)
    security = os.environ.get("VIRGA_DEBIAN_SECURITY_MIRROR", SECURITY_MIRROR)
    return (
        f"deb {mirror} {SUITE} main",
        f"deb {mirror} {SUITE}-updates main",
        f"deb {security} {SUITE}-security main",
    )


def release_file(source: str) -> str:
    """The file apt keeps a source's InRelease in: `deb http://h/debian s main` →
    `h_debian_dists_s_InRelease` (under /var/lib/apt/lists)."""
    _, uri, suite, *_ = source.split()
    host_path = uri.split("://", 1)[-1].rstrip("/")
    return f"{host_path.replace('/', '_')}_dists_{suite}_InRelease"


def release_hashes(
    source_lines: tuple[str, ...], lists: Path = Path("/var/lib/apt/lists")
) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for source in source_lines:
        name = release_file(source)
        try:
            hashes[name] = hashlib.sha256((lists / name).read_bytes()).hexdigest()
        except OSError:
            hashes[name] = ""
    return hashes


def resolve_inputs(lists: Path = Path("/var/lib/apt/lists")) -> Inputs:
    """Today's inputs: a few local file reads, no network (well under a second)."""
    source_lines = sources()
    return Inputs(
        name=NAME,
        suite=SUITE,
        sources=source_lines,
        packages=PACKAGES,
        customize_sha256=hashlib.sha256(CUSTOMIZE.encode()).hexdigest(),
        disk_mib=DISK_MIB,
        releases=release_hashes(source_lines, lists),
    )


def images_root(cache_root: Path | None = None) -> Path:
    return (cache_root or default_cache_root()) / "images" / NAME


def cached(inputs: Inputs, cache_root: Path | None = None) -> StockImage | None:
    image = StockImage(images_root(cache_root) / inputs.key(), inputs)
    return image if image.manifest.is_file() and image.disk.is_file() else None


def build(
    cache_root: Path | None = None, *, log: Callable[[str], None] | None = None
) -> StockImage:
    """The image for today's inputs, built into the cache unless it is there already.

    Concurrent builds serialise on a lock; each builds in a temporary directory beside the
    cache entry and renames it into place, so a reader never sees half an image."""
    inputs = resolve_inputs()
    if (image := cached(inputs, cache_root)) is not None:
        return image
    root = images_root(cache_root)
    with exclusive(root / ".lock"):
        if (image := cached(inputs, cache_root)) is not None:
            return image
        if os.geteuid() != 0:
            raise StockImageError("building it needs root: mmdebstrap chroots into the tree")
        if missing := [tool for tool in TOOLS if shutil.which(tool) is None]:
            raise StockImageError(
                f"{', '.join(missing)} not found: apt-get install {' '.join(HOST_PACKAGES)}"
            )
        began = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=".build-", dir=root) as scratch:
            work = Path(scratch)
            _build_into(work / "image", work, inputs, log or (lambda line: None))
            final = root / inputs.key()
            shutil.rmtree(final, ignore_errors=True)
            (work / "image").rename(final)
        for stale in root.iterdir():  # images of older inputs are not used again
            if stale.is_dir() and stale != final and not stale.name.startswith("."):
                shutil.rmtree(stale, ignore_errors=True)
        if log:
            log(f"{NAME} built in {time.monotonic() - began:.0f} s")
        return StockImage(final, inputs)


def _build_into(target: Path, work: Path, inputs: Inputs, log: Callable[[str], None]) -> None:
    rootfs = work / "rootfs"
    hook = work / "customize.sh"
    hook.write_text(CUSTOMIZE)
    log(f"mmdebstrap {inputs.suite} with {len(inputs.packages)} packages (about a minute)")
    command = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        f"--include={','.join(inputs.packages)}",
        f'--customize-hook=sh {hook} "$1"',
        inputs.suite,
        str(rootfs),
        *inputs.sources,
    ]
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if result.returncode != 0:
        raise StockImageError(f"mmdebstrap failed: {tail(result.stdout + result.stderr)}")
    target.mkdir()
    log(f"writing the {inputs.disk_mib} MiB disk (ext4, MBR, GRUB) and compressing it")
    disk = target / f"{inputs.name}.qcow2"
    stock_disk.assemble(rootfs, disk, work, disk_mib=inputs.disk_mib, root_uuid=ROOT_UUID)
    shutil.rmtree(rootfs)
    manifest = {
        "inputs": asdict(inputs),
        "key": inputs.key(),
        "sha256": _file_sha256(disk),
        "size_bytes": disk.stat().st_size,
        "build_id": str(uuid.uuid4()),
    }
    # Written last: its presence is what marks the directory as complete.
    (target / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: Sequence[str], prog: str) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "path"])
    parser.add_argument("name", choices=[NAME])
    parser.add_argument("--output", type=Path, default=None, help="build: also copy it here")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: $VIRGA_CACHE_DIR")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            image = build(args.cache_dir, log=lambda line: print(f"==> {line}", flush=True))
        elif (found := cached(resolve_inputs(), args.cache_dir)) is not None:
            image = found
        else:
            print(f"{NAME}: not built yet (run `image build {NAME}`)", file=sys.stderr)
            return 1
    except (StockImageError, stock_disk.StockDiskError, OSError) as error:
        print(f"{NAME}: {error}", file=sys.stderr)
        return 1
    if args.output is not None:
        shutil.copyfile(image.disk, args.output)
        print(args.output)
    else:
        print(image.disk)
    return 0
