"""The guest image's initramfs: busybox, the virtio modules and an /init that configures eth0.

Everything is written by this module (a cpio "newc" archive, gzip-compressed, every mtime
and owner fixed), so the same inputs give the same bytes and no root is needed to make the
device nodes the kernel wants before /init runs.
"""

from __future__ import annotations

import gzip
import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# What /init loads, by module name; their dependencies come first, found in each module's
# .modinfo. Whatever the kernel has built in (modules.builtin) is skipped.
WANTED_MODULES = (
    "virtio_pci",  # the PCI transport every virtio device below sits on
    "virtio_blk",  # the boot volume
    "virtio_net",  # the NIC
    "qemu_fw_cfg",  # /sys/firmware/qemu_fw_cfg: where the address comes from
    "virtio_rng",  # entropy from the host, so nothing in the guest blocks on it
    "button",  # the ACPI power button, so a graceful stop powers the guest off...
    "evdev",  # ...through /dev/input/event*, which busybox acpid reads
)

INIT = r"""#!/bin/busybox sh
# /init of Virga's guest image: load the virtio modules, configure the NIC from the address
# the host put in fw_cfg (or an SMBIOS OEM string), answer ping and HTTP, power off on ACPI.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp
mount -t devpts devpts /dev/pts
say() { echo "virga-guest: $*"; }
while read -r module; do
    insmod "/lib/modules/$module" || say "could not load $module"
done < /etc/modules
hostname virga-guest

config=""
entry=/sys/firmware/qemu_fw_cfg/by_name/opt/org.virga/network/raw
if [ -r "$entry" ]; then
    config=$(cat "$entry")
else
    for raw in /sys/firmware/dmi/entries/11-*/raw; do
        [ -r "$raw" ] || continue
        config=$(strings "$raw" | grep '^virga:' | head -n 1)
        [ -n "$config" ] && break
    done
fi
config=${config#virga:}

ip="" gw="" mac="" mtu="" dns=""
IFS=';'
for pair in $config; do
    case "$pair" in
        ip=*) ip=${pair#ip=} ;;
        gw=*) gw=${pair#gw=} ;;
        mac=*) mac=${pair#mac=} ;;
        mtu=*) mtu=${pair#mtu=} ;;
        dns=*) dns=${pair#dns=} ;;
    esac
done
unset IFS

dev=eth0
if [ -n "$mac" ]; then
    for path in /sys/class/net/*; do
        [ "$(cat "$path/address")" = "$mac" ] && dev=${path##*/}
    done
fi
ip link set lo up
if [ -z "$ip" ]; then
    say "no address given (fw_cfg opt/org.virga/network); $dev stays unconfigured"
    ip link set "$dev" up
    ready="up (no address)"
else
    [ -n "$mtu" ] && ip link set "$dev" mtu "$mtu"
    ip link set "$dev" up
    ip addr add "$ip" dev "$dev"
    [ -n "$gw" ] && ip route add default via "$gw"
    [ -n "$dns" ] && echo "nameserver $dns" > /etc/resolv.conf
    echo "virga-guest ${ip%/*}" > /www/index.html
    ready="up ${ip%/*}"
fi

httpd -p 80 -h /www
acpid -c /etc/acpi -l /dev/console  # no /var/log here: its default log would stop it
# The disks it sees, with their serials, on the console whenever they change: a host checks
# a hot-plug or unplug from the guest's side ("virga-disks: vda=<serial> vdb=<serial>").
(
    last=""
    while true; do
        now=""
        for disk in /sys/block/vd*; do
            [ -e "$disk" ] && now="$now ${disk##*/}=$(cat "$disk/serial" 2>/dev/null)"
        done
        # A line of its own, even after the console shell's prompt.
        [ "$now" != "$last" ] && printf '\nvirga-disks:%s\n' "$now" && last="$now"
        sleep 0.5
    done
) &
# Said last, so that whoever waits for it can rely on ping, HTTP and the power button.
say "$ready"
# A root shell on the serial console (`virsh console`); pid 1 must never exit.
while true; do
    setsid cttyhack sh -l
    sleep 1
done
"""

POWER_BUTTON = """#!/bin/sh
# Run by busybox acpid on the ACPI power button: the host's graceful stop.
echo "virga-guest: powering off"
sync
poweroff -f
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One member of the archive."""

    path: str
    """Without a leading slash: 'bin/busybox'."""
    mode: int
    """Full st_mode: file type bits and permissions."""
    data: bytes = b""
    """File contents, or a symbolic link's target."""
    rdev: tuple[int, int] = (0, 0)
    """Major and minor of a device node."""


def directory(path: str) -> Entry:
    return Entry(path, 0o040755)


def file(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, 0o100755 if executable else 0o100644, data)


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, 0o020600, rdev=(major, minor))


def cpio_newc(entries: Iterable[Entry]) -> bytes:
    """A cpio archive in the "newc" format the kernel unpacks, with owner 0 and mtime 0."""
    out = io.BytesIO()
    inode = 1
    for entry in [*entries, Entry("TRAILER!!!", 0)]:
        name = entry.path.encode() + b"\0"
        fields = (
            inode, entry.mode, 0, 0, 2 if entry.mode & 0o040000 else 1, 0, len(entry.data),
            0, 0, entry.rdev[0], entry.rdev[1], len(name), 0,
        )  # fmt: skip
        out.write(b"070701" + b"".join(b"%08X" % value for value in fields))
        out.write(name)
        out.write(b"\0" * (-(110 + len(name)) % 4))
        out.write(entry.data)
        out.write(b"\0" * (-len(entry.data) % 4))
        inode += 1
    return out.getvalue()


def modinfo(ko: bytes) -> dict[str, str]:
    """The key=value pairs of a kernel module's .modinfo ELF section (name, depends...)."""
    if ko[:4] != b"\x7fELF" or ko[4] != 2:
        raise ValueError("not a 64-bit ELF kernel module")
    (shoff,) = struct.unpack_from("<Q", ko, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", ko, 0x3A)

    def section(index: int) -> tuple[int, int, int]:
        name, _, _, _, offset, size = struct.unpack_from("<IIQQQQ", ko, shoff + index * shentsize)
        return name, offset, size

    _, strtab, _ = section(shstrndx)
    for index in range(shnum):
        name, offset, size = section(index)
        if ko[strtab + name : ko.index(b"\0", strtab + name)] == b".modinfo":
            pairs = (item.partition(b"=") for item in ko[offset : offset + size].split(b"\0"))
            return {key.decode(): value.decode() for key, _, value in pairs if key}
    return {}


def module_load_order(modules_dir: Path, wanted: Sequence[str]) -> list[Path]:
    """The .ko files to insmod, dependencies first, relative to `modules_dir`.

    Names are matched with '-' and '_' taken as equal, as the kernel does.
    """
    builtin = {
        Path(line).stem.replace("-", "_")
        for line in (modules_dir / "modules.builtin").read_text().split()
    }
    files = {ko.stem.replace("-", "_"): ko for ko in (modules_dir / "kernel").rglob("*.ko")}
    order: list[Path] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        name = name.replace("-", "_")
        if name in seen or name in builtin:
            return
        seen.add(name)
        if name not in files:
            raise FileNotFoundError(f"kernel module {name} is neither built in nor a .ko file")
        depends = modinfo(files[name].read_bytes()).get("depends", "")
        for dependency in filter(None, depends.split(",")):
            visit(dependency)
        order.append(files[name].relative_to(modules_dir))

    for name in wanted:
        visit(name)
    return order


def build(busybox: bytes, modules_dir: Path, wanted: Sequence[str] = WANTED_MODULES) -> bytes:
    """The gzip-compressed initramfs (gzip's own timestamp fixed too)."""
    order = module_load_order(modules_dir, wanted)
    entries = [directory(d) for d in ("bin", "dev", "etc", "etc/acpi", "etc/acpi/PWRF",
                                      "lib", "lib/modules", "proc", "sys", "www")]  # fmt: skip
    entries += [
        char_device("dev/console", 5, 1),
        char_device("dev/null", 1, 3),
        file("init", INIT.encode(), executable=True),
        file("bin/busybox", busybox, executable=True),
        Entry("bin/sh", 0o120777, b"busybox"),  # a symbolic link, for scripts' shebangs
        file("etc/modules", "".join(f"{ko.name}\n" for ko in order).encode()),
        file("etc/acpi/PWRF/00000080", POWER_BUTTON.encode(), executable=True),
        file("www/index.html", b"virga-guest\n"),
    ]
    entries += [file(f"lib/modules/{ko.name}", (modules_dir / ko).read_bytes()) for ko in order]
    return gzip.compress(cpio_newc(entries), compresslevel=9, mtime=0)
