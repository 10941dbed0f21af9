"""Live migration by the libvirt driver between two real libvirtd daemons on this machine
(`virga_devstack.libvirt_host`): a TCG guest on an RBD volume moves to the other host and
back while it runs; a migration to a host that is not there, or one that cannot finish in
time, fails cleanly and leaves the guest running where it was.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.support.libvirt_hosts import two_libvirt_hosts
from tests.support.migration_lab import (
    Host,
    ceph_settings,
    console_text,
    drivers,
    guest_on,
    guest_uptime,
    state,
    virsh_migrate,
)

from virga_compute.ceph_access import CephSettings
from virga_compute.core.spec import DomainState
from virga_compute.drivers.base import (
    MigrationAborted,
    MigrationFailed,
    MigrationOptions,
    MigrationProgress,
)
from virga_compute.drivers.domain_xml import domain_name
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import READY_LINE, GuestBoot, ensure_guest
from virga_devstack.libvirt_host import SUBNET, LibvirtHost

pytestmark = [pytest.mark.libvirt]
__all__ = ["two_libvirt_hosts"]  # the fixture, imported to be used here


@pytest.fixture(scope="module")
def guest() -> GuestBoot:
    return ensure_guest()


@pytest.fixture(scope="module")
def ceph(ceph_cluster: CephCluster) -> CephSettings:
    return ceph_settings(ceph_cluster)


@pytest.fixture
async def hosts(
    two_libvirt_hosts: tuple[LibvirtHost, LibvirtHost], ceph: CephSettings, tmp_path: Path
) -> AsyncIterator[tuple[Host, ...]]:
    async with drivers(two_libvirt_hosts, ceph, tmp_path) as made:
        yield made


@pytest.fixture
async def running_guest(
    hosts: tuple[Host, ...],
    ceph_cluster: CephCluster,
    ceph: CephSettings,
    guest: GuestBoot,
    tmp_path: Path,
) -> AsyncIterator[str]:
    a, b = hosts
    async with guest_on(a, (b,), ceph_cluster, ceph, guest, tmp_path) as instance_id:
        yield instance_id


async def test_a_guest_on_rbd_moves_there_and_back_while_it_runs(
    hosts: tuple[Host, ...], running_guest: str, tmp_path: Path
) -> None:
    a, b = hosts
    instance_id = running_guest
    before = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
    clock = time.monotonic()
    samples: list[MigrationProgress] = []

    there = await a.driver.migrate_live(
        instance_id, b.info.peer_uri, b.info.migration_address, on_progress=samples.append
    )
    assert await state(a, instance_id) is DomainState.MISSING
    assert await state(b, instance_id) is DomainState.RUNNING
    assert a.info.qemu_pid(domain_name(instance_id)) is None
    assert b.info.qemu_pid(domain_name(instance_id)) is not None
    assert await a.driver.list_instances() == []
    # The guest answers on B: the same guest, its clock ran on.
    on_b = await asyncio.to_thread(guest_uptime, b.info.uri, instance_id)
    assert on_b > before

    back = await b.driver.migrate_live(instance_id, a.info.peer_uri, a.info.migration_address)
    assert await state(a, instance_id) is DomainState.RUNNING
    assert await state(b, instance_id) is DomainState.MISSING
    after = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
    elapsed = time.monotonic() - clock
    assert on_b < after
    # Never rebooted: one boot on the console, and the uptime grew with the wall clock
    # (TCG's guest clock may lag under load, never jump back).
    assert console_text(tmp_path, instance_id).count(READY_LINE) == 1
    assert after - before > elapsed * 0.3
    print(  # the numbers of the report (pytest -s)
        f"\nvirga migrate_live A→B {there.seconds:.2f} s, B→A {back.seconds:.2f} s,"
        f" {len(samples)} samples, last {samples[-1] if samples else None}"
    )

    # The bare `virsh migrate --live --p2p` of the same guest between the same daemons.
    bare_there = await asyncio.to_thread(virsh_migrate, a.info, b.info, instance_id)
    assert await state(b, instance_id) is DomainState.RUNNING
    bare_back = await asyncio.to_thread(virsh_migrate, b.info, a.info, instance_id)
    assert await state(a, instance_id) is DomainState.RUNNING
    print(f"virsh migrate --live A→B {bare_there:.2f} s, B→A {bare_back:.2f} s")


async def test_a_migration_to_a_host_not_there_fails_and_the_guest_runs_on(
    hosts: tuple[Host, ...], running_guest: str
) -> None:
    a, b = hosts
    before = await asyncio.to_thread(guest_uptime, a.info.uri, running_guest)
    nowhere = f"{SUBNET}.250"  # on the hosts' network, answered by no one
    with pytest.raises(MigrationFailed) as failure:
        await a.driver.migrate_live(running_guest, f"qemu+tcp://{nowhere}/system", nowhere)
    assert not isinstance(failure.value, MigrationAborted)
    assert await state(a, running_guest) is DomainState.RUNNING
    assert await state(b, running_guest) is DomainState.MISSING
    assert await asyncio.to_thread(guest_uptime, a.info.uri, running_guest) > before
    # And the host is fine for the next migration, with the options for busy guests.
    busy = MigrationOptions(auto_converge=True, compressed=True)
    await a.driver.migrate_live(
        running_guest, b.info.peer_uri, b.info.migration_address, options=busy
    )
    assert await state(b, running_guest) is DomainState.RUNNING


async def test_a_migration_past_its_timeout_is_aborted_and_the_guest_stays(
    hosts: tuple[Host, ...], running_guest: str
) -> None:
    a, b = hosts
    # 1 MiB/s for 128 MiB of memory: far longer than the timeout, which leaves time for
    # the destination's QEMU to start and the memory to start flowing.
    options = MigrationOptions(timeout=6.0, bandwidth_mib=1, poll_interval=0.2)
    samples: list[MigrationProgress] = []
    started = time.monotonic()
    with pytest.raises(MigrationAborted):
        await a.driver.migrate_live(
            running_guest,
            b.info.peer_uri,
            b.info.migration_address,
            options=options,
            on_progress=samples.append,
        )
    assert time.monotonic() - started < 40
    assert samples
    assert max(sample.data_processed for sample in samples) > 0
    assert await state(a, running_guest) is DomainState.RUNNING
    assert await state(b, running_guest) is DomainState.MISSING
    assert await a.driver.migration_progress(running_guest) is None
    await asyncio.to_thread(guest_uptime, a.info.uri, running_guest)


async def test_a_migration_whose_caller_gives_up_is_aborted_and_the_guest_stays(
    hosts: tuple[Host, ...], running_guest: str
) -> None:
    a, b = hosts
    options = MigrationOptions(bandwidth_mib=1, poll_interval=0.2)
    samples: list[MigrationProgress] = []
    migration = asyncio.create_task(
        a.driver.migrate_live(
            running_guest,
            b.info.peer_uri,
            b.info.migration_address,
            options=options,
            on_progress=samples.append,
        )
    )
    deadline = time.monotonic() + 60
    while not any(sample.data_processed for sample in samples):
        assert time.monotonic() < deadline, "the memory never started to flow"
        assert not migration.done()
        await asyncio.sleep(0.1)
    migration.cancel()
    with pytest.raises(asyncio.CancelledError):
        await migration
    # The job was aborted, not left to finish unobserved: the guest stays on A.
    deadline = time.monotonic() + 30
    while await a.driver.migration_progress(running_guest) is not None:
        assert time.monotonic() < deadline, "the migration job is still running"
        await asyncio.sleep(0.2)
    assert await state(a, running_guest) is DomainState.RUNNING
    assert await state(b, running_guest) is DomainState.MISSING
    await asyncio.to_thread(guest_uptime, a.info.uri, running_guest)


def disk_auth(host: LibvirtHost, instance_id: str) -> set[tuple[str, str]]:
    """(cephx user, secret UUID) of the guest's RBD disks in its definition on `host`."""
    xml = subprocess.run(
        ["virsh", "-c", host.uri, "dumpxml", domain_name(instance_id)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {
        (auth.get("username", ""), secret.get("uuid", ""))
        for auth in ET.fromstring(xml).iter("auth")
        for secret in auth.iter("secret")
    }


async def test_hosts_with_cephx_users_of_their_own_move_the_guest_under_the_destinations(
    two_libvirt_hosts: tuple[LibvirtHost, LibvirtHost],
    ceph_cluster: CephCluster,
    guest: GuestBoot,
    tmp_path: Path,
) -> None:
    """Each host opens volumes as its own cephx user (as `virga host add` makes them), and
    defines only its own user's secret: the destination's QEMU opens the guest's disks as
    the destination's user (`MigrationOptions.destination_ceph`). Without it, libvirt on the
    destination refuses the guest: "Secret not found" (the source's secret is not there)."""
    own = tuple(ceph_settings(ceph_cluster, name) for name in ("own-a", "own-b"))
    ids = tuple((s.user, s.secret_uuid) for s in own)
    a_id, b_id = ((user, secret) for user, secret in ids if user and secret)
    async with (
        drivers(two_libvirt_hosts, own, tmp_path) as (a, b),
        guest_on(a, (b,), ceph_cluster, own[0], guest, tmp_path) as instance_id,
    ):
        before = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)
        there = MigrationOptions(destination_ceph=b_id)
        await a.driver.migrate_live(
            instance_id, b.info.peer_uri, b.info.migration_address, options=there
        )
        assert await state(b, instance_id) is DomainState.RUNNING
        assert disk_auth(b.info, instance_id) == {b_id}
        on_b = await asyncio.to_thread(guest_uptime, b.info.uri, instance_id)
        assert on_b > before
        back = MigrationOptions(destination_ceph=a_id)
        await b.driver.migrate_live(
            instance_id, a.info.peer_uri, a.info.migration_address, options=back
        )
        assert await state(a, instance_id) is DomainState.RUNNING
        assert disk_auth(a.info, instance_id) == {a_id}
        assert await asyncio.to_thread(guest_uptime, a.info.uri, instance_id) > on_b
