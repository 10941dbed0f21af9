"""A Virga guest on RBD on one of two libvirt hosts (`libvirt_hosts`), with a compute driver
per host: what the live-migration test and bench (bench/migration_bench.py) share.

The guest is Virga's busybox guest (`virga_devstack.guest`) booted from its kernel, with its
boot volume in the test Ceph cluster, so only memory moves. Its uptime is read from
/proc/uptime through its serial console (a root shell), which shows it ran on without a
reboot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import rados
import rbd

from virga_compute.ceph_access import CephSettings, settings_from_env
from virga_compute.core.spec import DirectKernelBoot, DiskSpec, DomainState, InstanceSpec
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_devstack.ceph import CephCluster
from virga_devstack.ceph_users import client_keyring, compute_user
from virga_devstack.guest import READY_LINE, GuestBoot
from virga_devstack.libvirt_host import LibvirtHost

MIB = 1 << 20
_UPTIME = re.compile(r"UPTIME=(\d+\.\d+)")


@dataclass
class Host:
    info: LibvirtHost
    driver: LibvirtDriver


def ceph_settings(cluster: CephCluster, host: str = "migration") -> CephSettings:
    """The cephx user of `host`'s compute agent, as the local stack makes it (by default one
    user that every host of the lab shares)."""
    user = compute_user(host)
    keyring = client_keyring(cluster, user)
    env = {
        "VIRGA_CEPH_CONF": str(cluster.conf_file),
        "VIRGA_CEPH_USER": user,
        "VIRGA_CEPH_KEYRING": str(keyring),
    }
    settings = settings_from_env(env)
    assert settings is not None
    return settings


@contextlib.asynccontextmanager
async def drivers(
    hosts: tuple[LibvirtHost, ...],
    ceph: CephSettings | tuple[CephSettings, ...],
    console_dir: Path,
) -> AsyncIterator[tuple[Host, ...]]:
    """A connected `LibvirtDriver` per host (each defines the Ceph secret on its host): all
    with `ceph`'s user, or each with its own (`ceph` a tuple, one per host)."""
    made = []
    settings = DomainSettings(domain_type="qemu", console_log_dir=str(console_dir))
    users = ceph if isinstance(ceph, tuple) else (ceph,) * len(hosts)
    try:
        for host, user in zip(hosts, users, strict=True):
            driver = LibvirtDriver(
                host.uri,
                instances_path=str(console_dir),
                settings=settings,
                ceph_secret=user.secret(),
            )
            made.append(Host(host, driver))
            await driver.connect()
        yield tuple(made)
    finally:
        for host_driver in made:
            await host_driver.driver.close()


def _image(cluster: CephCluster, name: str, size: int | None) -> None:
    """Create the RBD image `name` of `size` bytes, or remove it (None)."""
    with (
        rados.Rados(conffile=str(cluster.conf_file), conf={"keyring": str(cluster.keyring)}) as c,
        c.open_ioctx(cluster.pool) as ioctx,
    ):
        if size is not None:
            rbd.RBD().create(ioctx, name, size)
            return
        # A QEMU killed rather than stopped (the destination's, after an aborted migration)
        # leaves its watch on the image until the OSD times it out (30 s): every guest is
        # gone by now, so whoever still watches is fenced (as the storage service fences a
        # dead host), and the removal is retried until the OSDs have seen the blocklist.
        deadline = time.monotonic() + 90
        while True:
            try:
                rbd.RBD().remove(ioctx, name)
                return
            except rbd.ImageNotFound:
                return
            except rbd.ImageBusy:
                if time.monotonic() > deadline:
                    raise
                _fence_watchers(c, ioctx, name)
                time.sleep(0.25)


def _fence_watchers(cluster: rados.Rados, ioctx: rados.Ioctx, name: str) -> None:
    me = cluster.get_instance_id()
    with rbd.Image(ioctx, name, read_only=True) as image:
        watchers = [w for w in image.watchers_list() if int(w["id"]) != me]
    for watcher in watchers:
        cluster.blocklist_add(str(watcher["addr"]), 60)


@contextlib.asynccontextmanager
async def guest_on(
    host: Host, others: tuple[Host, ...], cluster: CephCluster, ceph: CephSettings,
    guest: GuestBoot, console_dir: Path, *, ram_mb: int = 128,
) -> AsyncIterator[str]:  # fmt: skip
    """A running guest on `host` (its id), up and ready; destroyed on every host at the end."""
    instance_id = f"i-mig-{uuid.uuid4().hex[:8]}"
    volume = ceph.source(instance_id)
    await asyncio.to_thread(_image, cluster, volume.image, 64 * MIB)
    spec = InstanceSpec(
        instance_id=instance_id,
        name=instance_id,
        vcpus=1,
        ram_mb=ram_mb,
        disks=(DiskSpec("vda", volume, serial=instance_id[:20]),),
        boot=DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline),
    )
    try:
        await host.driver.spawn(spec)
        console = console_dir / f"{domain_name(instance_id)}.log"
        await wait_for(lambda: READY_LINE in _read(console), 120, "the guest's ready line")
        yield instance_id
    finally:
        for each in (host, *others):
            with contextlib.suppress(Exception):
                await each.driver.destroy(instance_id)
        await asyncio.to_thread(_image, cluster, volume.image, None)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def console_text(console_dir: Path, instance_id: str) -> str:
    return _read(console_dir / f"{domain_name(instance_id)}.log")


async def wait_for(predicate: object, seconds: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def guest_uptime(uri: str, instance_id: str, seconds: float = 30.0) -> float:
    """The guest's /proc/uptime, asked on its serial console's root shell (blocking)."""
    # The echoed command line holds "UPTIME=$(", never digits after "=".
    command = "echo UPTIME=$(cut -d' ' -f1 /proc/uptime)"
    return float(console_command(uri, instance_id, command, _UPTIME, seconds))


def start_dirtying(uri: str, instance_id: str, mib: int = 48) -> None:
    """Make the guest rewrite `mib` MiB of its memory (a file in its RAM root) forever."""
    loop = f"dd if=/dev/zero of=/dirty bs=1M count={mib} conv=notrunc 2>/dev/null"
    command = f"(while :; do {loop}; done) >/dev/null 2>&1 & echo DIRTY=$((1+1))"
    console_command(uri, instance_id, command, re.compile(r"DIRTY=(2)"))


def console_command(
    uri: str, instance_id: str, command: str, answer: re.Pattern[str], seconds: float = 30.0
) -> str:
    """Type `command` on the guest's serial console (a root shell) until its output matches
    `answer`; the answer's first group (blocking).

    A blocking console stream read on a thread of its own: a non-blocking one would need a
    libvirt event loop to move its data."""
    conn = libvirt.open(uri)
    try:
        dom = conn.lookupByName(domain_name(instance_id))
        stream = conn.newStream(0)
        dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        seen: list[bytes] = []

        def read() -> None:
            with contextlib.suppress(libvirt.libvirtError):
                while data := stream.recv(4096):
                    if not isinstance(data, bytes):
                        return
                    seen.append(data)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                stream.send(f"\n{command}\n".encode())
                for _ in range(20):
                    if found := answer.search(b"".join(seen).decode(errors="replace")):
                        return found.group(1)
                    time.sleep(0.1)
            raise AssertionError(f"no answer on the console: {b''.join(seen)[-500:]!r}")
        finally:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            reader.join(5)
    finally:
        conn.close()


async def state(host: Host, instance_id: str) -> DomainState:
    return (await host.driver.get_info(instance_id)).state


def virsh_migrate(
    source: LibvirtHost, destination: LibvirtHost, instance_id: str, *options: str
) -> float:
    """`virsh migrate --live --p2p` of the guest, as the recipe did it (`options` added,
    e.g. `--auto-converge`); its wall time."""
    started = time.monotonic()
    subprocess.run(
        ["virsh", "-c", source.uri, "migrate", "--live", "--p2p", "--persistent",
         "--undefinesource", *options, domain_name(instance_id), destination.peer_uri,
         "--migrateuri", destination.migration_address],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return time.monotonic() - started
