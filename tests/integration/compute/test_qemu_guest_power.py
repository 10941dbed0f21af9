"""Real TCG guests on qemu:///system that stop without Virga asking, under a running agent:
`virsh destroy`, the guest powering itself off on the ACPI button (`system_powerdown` through
QEMU's monitor; Virga's busybox guest runs acpid), and its QEMU process killed (a crash), with
an `on-crash` restart policy. Each is recorded within seconds, from libvirt's lifecycle events
alone (the periodic sync is off), and its usage stops at that moment.

The guest is Virga's image booted from its kernel and initramfs (`virga_devstack.guest`), with
no disk and no network: nothing but the domain is needed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import libvirt
import pytest
from tests.integration.compute.agent_harness import (
    Cloud,
    Hypervisor,
    running_agent,
    wait_until,
)
from tests.integration.compute.test_guest_power import placed

from virga_compute.core.spec import DirectKernelBoot, DomainState
from virga_compute.drivers.base import ComputeDriver
from virga_compute.drivers.domain_xml import DomainSettings, domain_name
from virga_compute.drivers.libvirt import LibvirtDriver
from virga_devstack.guest import READY_LINE, GuestBoot, ensure_guest
from virga_events.catalog.api import InstanceRestartPolicy
from virga_rating.fold import evolve as rate
from virga_rating.state import BillingState

pytestmark = [pytest.mark.kafka, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"
PREFIX = "i-qpow-"


@pytest.fixture(scope="module")
def guest() -> GuestBoot:
    return ensure_guest()


class QemuHost(Hypervisor):
    """libvirtd's QEMU driver at `uri`, TCG domains, console logs in `console_dir`."""

    kind = "qemu"

    def __init__(self, console_dir: Path, uri: str = URI) -> None:
        self.console_dir = console_dir
        self.uri = uri

    async def new_driver(self) -> ComputeDriver:
        settings = DomainSettings(domain_type="qemu", console_log_dir=str(self.console_dir))
        path = str(self.console_dir)
        # A guest restarted a moment ago may not run acpid yet: a stop forces it off soon.
        return LibvirtDriver(self.uri, instances_path=path, settings=settings, grace_period=15)

    async def release(self, driver: ComputeDriver) -> None:
        await driver.close()

    async def state(self, instance_id: str) -> DomainState:
        driver = await self.new_driver()
        try:
            return (await driver.get_info(instance_id)).state
        finally:
            await driver.close()

    def console(self, instance_id: str) -> str:
        path = self.console_dir / f"{domain_name(instance_id)}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def virsh(self, *args: str) -> str:
        command = ["virsh", "-c", self.uri, *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    def qemu_pid(self, instance_id: str, run_dir: Path = Path("/run/libvirt/qemu")) -> int:
        """The pid of the guest's QEMU, from libvirt's pid file, checked against its cmdline."""
        name = domain_name(instance_id)
        pid = int((run_dir / f"{name}.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        assert f"guest={name}" in cmdline, cmdline
        return pid


def remove_test_domains(uri: str) -> None:
    conn = libvirt.open(uri)
    try:
        for dom in conn.listAllDomains(0):
            if dom.name().startswith(f"virga-{PREFIX}"):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
    finally:
        conn.close()


@pytest.fixture
async def qemu_host(libvirtd: None, tmp_path: Path) -> AsyncIterator[QemuHost]:
    try:
        yield QemuHost(tmp_path)
    finally:
        remove_test_domains(URI)  # a failed test leaves no guest behind


def new_id() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:8]}"


def settings(guest: GuestBoot) -> dict[str, object]:
    boot = DirectKernelBoot(str(guest.kernel), str(guest.initrd), guest.cmdline)
    return {"direct_boot": boot, "power_sync_seconds": 600.0}


async def boot(cloud: Cloud, host: QemuHost, policy: InstanceRestartPolicy = "never") -> str:
    instance_id = new_id()
    await cloud.write("scheduler", placed(instance_id, policy))
    await cloud.wait_for("InstanceStarted", instance_id, seconds=60)
    return instance_id


async def test_virsh_destroy_stops_the_instance_and_its_billing_at_that_instant(
    cloud: Cloud, qemu_host: QemuHost, guest: GuestBoot
) -> None:
    async with running_agent(cloud, qemu_host, **settings(guest)):
        instance_id = await boot(cloud, qemu_host)
        destroyed_at = time.time()
        await asyncio.to_thread(qemu_host.virsh, "destroy", domain_name(instance_id))
        await cloud.wait_for("InstanceStopped", instance_id, seconds=5)
        [stopped] = cloud.events("InstanceStopped", instance_id)
        assert stopped.payload.cause == "destroyed"
        assert 0 <= stopped.occurred_at.timestamp() - destroyed_at < 5
        assert await qemu_host.state(instance_id) is DomainState.SHUTOFF
    # Billing (and `virga audit rerate`, which folds the same way) bills it until then.
    state = BillingState()
    for envelope in [*cloud.events("InstanceStarted", instance_id), stopped]:
        state = rate(state, envelope)
    [interval] = state.instances[instance_id].intervals
    assert interval.end == stopped.occurred_at
    assert state.instances[instance_id].running_since is None


async def test_a_guest_that_powers_itself_off_is_stopped_with_that_cause(
    cloud: Cloud, qemu_host: QemuHost, guest: GuestBoot
) -> None:
    async with running_agent(cloud, qemu_host, **settings(guest)):
        instance_id = await boot(cloud, qemu_host, "on-crash")
        await wait_until(lambda: READY_LINE in qemu_host.console(instance_id), 120)
        # The ACPI power button, pressed from QEMU's monitor: the guest's acpid powers it off.
        name = domain_name(instance_id)
        await asyncio.to_thread(
            qemu_host.virsh, "qemu-monitor-command", name, "--hmp", "system_powerdown"
        )
        await cloud.wait_for("InstanceStopped", instance_id, seconds=60)
        [stopped] = cloud.events("InstanceStopped", instance_id)
        assert stopped.payload.cause == "shutdown"
        assert "virga-guest: powering off" in qemu_host.console(instance_id)
        # `on-crash` does not restart a guest that shut itself down.
        assert cloud.events("InstanceRestarted", instance_id) == []
        assert await qemu_host.state(instance_id) is DomainState.SHUTOFF


async def test_a_crashed_guest_with_on_crash_runs_again(
    cloud: Cloud, qemu_host: QemuHost, guest: GuestBoot
) -> None:
    async with running_agent(cloud, qemu_host, **settings(guest)):
        instance_id = await boot(cloud, qemu_host, "on-crash")
        pid = qemu_host.qemu_pid(instance_id)  # a process this test made exist
        os.kill(pid, signal.SIGKILL)
        await cloud.wait_for("InstanceRestarted", instance_id, seconds=60)
        [stopped] = cloud.events("InstanceStopped", instance_id)
        [restarted] = cloud.events("InstanceRestarted", instance_id)
        assert stopped.payload.cause == "crashed"
        assert (restarted.payload.cause, restarted.payload.policy) == ("crashed", "on-crash")
        assert await qemu_host.state(instance_id) is DomainState.RUNNING
        assert qemu_host.qemu_pid(instance_id) != pid  # a fresh QEMU
        # Virga's own stop afterwards: recorded once, and not restarted.
        await cloud.act(instance_id, "stop")
        await cloud.wait_for("InstanceStopped", instance_id, count=2, seconds=60)
        await asyncio.sleep(0)  # nothing else may follow: checked once the agent stops
    assert [e.payload.cause for e in cloud.events("InstanceStopped", instance_id)] == [
        "crashed",
        "requested",
    ]
    assert len(cloud.events("InstanceRestarted", instance_id)) == 1
