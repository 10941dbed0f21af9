"""libvirtd restarted under a running compute agent: the agent reconnects, reads every domain
again, and records what changed while it could not listen; then libvirt's lifecycle events
reach it again. The daemon is a private one the test starts (`tests.support.private_libvirtd`):
the system libvirtd is shared with other tests and never restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.compute.agent_harness import Cloud, running_agent
from tests.integration.compute.test_qemu_guest_power import QemuHost, boot, guest, settings
from tests.support.private_libvirtd import PrivateLibvirtd, private_libvirtd

from virga_compute.drivers.domain_xml import domain_name
from virga_devstack.guest import GuestBoot

pytestmark = [pytest.mark.kafka, pytest.mark.libvirt, pytest.mark.timeout(600)]

__all__ = ["guest"]  # the fixture, shared with the other real-guest tests


@pytest.fixture
def daemon() -> Iterator[PrivateLibvirtd]:
    with private_libvirtd() as started:
        yield started


async def test_the_agent_reconnects_after_libvirtd_restarts_and_misses_nothing(
    cloud: Cloud, daemon: PrivateLibvirtd, guest: GuestBoot, tmp_path: Path
) -> None:
    host = QemuHost(tmp_path, uri=daemon.uri)
    async with running_agent(cloud, host, **settings(guest)):  # no periodic sync
        crashing = await boot(cloud, host)
        staying = await boot(cloud, host)
        await asyncio.to_thread(daemon.stop_libvirtd)
        # While nobody can listen, the first guest's QEMU dies (a process this test made).
        pid = daemon.qemu_pid(domain_name(crashing))
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(daemon.start_libvirtd)
        # The agent reconnects (backoff up to 10 s) and syncs: the stop is recorded.
        await cloud.wait_for("InstanceStopped", crashing, seconds=60)
        [stopped] = cloud.events("InstanceStopped", crashing)
        assert stopped.payload.cause in {"crashed", "destroyed"}
        # Events flow again on the new connection: a destroy is seen within seconds.
        await asyncio.to_thread(host.virsh, "destroy", domain_name(staying))
        await cloud.wait_for("InstanceStopped", staying, seconds=5)
        [destroyed] = cloud.events("InstanceStopped", staying)
        assert destroyed.payload.cause == "destroyed"
    assert len(cloud.events("InstanceStopped", crashing)) == 1
