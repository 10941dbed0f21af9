"""Guests that stop without Virga asking, seen through the API: a whole stack (billing too)
with a compute agent on qemu:///system, TCG guests booting firmware only (enough for a QEMU
process to destroy or kill). `virsh destroy` shows STOPPED within 5 s and the instance is
billed up to that instant, by the billing service's fold as by a replay of the log (what
`virga audit rerate` rates); a guest whose QEMU dies with `restart_policy: on-crash` is
RUNNING again, with `InstanceRestarted` in its history."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.e2e.test_qemu_guests import running_leaving_no_guest
from tests.support.api import Api, new_tenant
from tests.support.kafka import read_events
from tests.support.stack import HostSpec, Stack

from virga_audit import replay
from virga_billing.core import snapshot as billing_snapshot
from virga_eventlog import KafkaSettings, event_topic
from virga_events import REGISTRY

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"


@pytest.fixture(scope="module")
def stack(
    libvirtd: None, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("guest-power"),
        (HostSpec("power-host", "rack-1", libvirt_uri=URI),),
        billing=True,
    )
    with running_leaving_no_guest(stack):
        yield stack


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "power") as api:
        yield api


def virsh(*args: str) -> None:
    subprocess.run(["virsh", "-c", URI, *args], check=True, capture_output=True)


def qemu_pid(name: str) -> int:
    """The guest's QEMU, from libvirt's pid file, checked against its command line."""
    pid = int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())
    assert f"guest={name},".encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    return pid


async def test_virsh_destroy_shows_stopped_within_5_s_and_billing_stops_then(
    stack: Stack, tenant: Api
) -> None:
    created = await tenant.create_instance("destroyed")
    iid = created["id"]
    assert created["restart_policy"] == "never"
    await tenant.wait_status([iid], {"RUNNING"}, seconds=90)
    destroyed_at = time.monotonic()
    await asyncio.to_thread(virsh, "destroy", f"virga-{iid}")
    [view] = await tenant.wait_status([iid], {"STOPPED"}, seconds=5)
    seen_after = time.monotonic() - destroyed_at
    assert view["stop_cause"] == "destroyed"
    compute = await read_events(stack.bootstrap, event_topic("compute", stack.namespace), REGISTRY)
    [started] = [e for e in compute if e.aggregate_id == iid and e.type == "InstanceStarted"]
    [stopped] = [e for e in compute if e.aggregate_id == iid and e.type == "InstanceStopped"]
    # The log, replayed through billing's own fold (what rerate rates), closes the instance's
    # running interval at the stop event's instant, not a sample or a sync later.
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap, namespace=stack.namespace)
    state = billing_snapshot.restore(await replay(settings, "billing", datetime.now(UTC)))
    usage = state.instances[iid]
    assert [(i.start, i.end) for i in usage.intervals] == [
        (started.occurred_at, stopped.occurred_at)
    ]
    assert usage.running_since is None
    print(f"STOPPED in the API {seen_after:.2f} s after virsh destroy")
    await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([iid], {"DELETED"}, seconds=60)


async def test_a_crashed_guest_with_on_crash_runs_again(stack: Stack, tenant: Api) -> None:
    created = await tenant.create_instance("crashing", restart_policy="on-crash")
    iid = created["id"]
    await tenant.wait_status([iid], {"RUNNING"}, seconds=90)
    pid = qemu_pid(f"virga-{iid}")  # a process this test made exist
    os.kill(pid, signal.SIGKILL)
    for _ in range(300):
        history = await tenant.call("GET", f"/v1/instances/{iid}/events")
        if any(e["type"] == "InstanceRestarted" for e in history):
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("no InstanceRestarted")
    [view] = await tenant.wait_status([iid], {"RUNNING"}, seconds=10)
    assert (view["restart_policy"], view["stop_cause"]) == ("on-crash", None)
    [stopped] = [e for e in history if e["type"] == "InstanceStopped"]
    [restarted] = [e for e in history if e["type"] == "InstanceRestarted"]
    assert stopped["payload"]["cause"] == "crashed"
    assert restarted["payload"] == {"host": "power-host", "cause": "crashed", "policy": "on-crash"}
    assert qemu_pid(f"virga-{iid}") != pid
    await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([iid], {"DELETED"}, seconds=60)
