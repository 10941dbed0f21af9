"""A guest that ignores ACPI never stalls its agent (issue 14 §3), on `qemu:///system`.

The guests are TCG domains that boot firmware only: with no operating system, nothing
answers the ACPI power button, so every stop waits out the agent's whole grace and then
forces the domain off. The grace (20 s) is twice the scheduler's heartbeat timeout (10 s):
an agent that held its decide lock through the stop (as it did before effects ran beside
the loop) would go silent long enough to be marked down.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta

import libvirt
import pytest
from tests.e2e.test_qemu_guests import URI, running_leaving_no_guest
from tests.support.api import Api, new_tenant
from tests.support.kafka import read_events
from tests.support.stack import HostSpec, Stack

from virga_eventlog import KafkaSettings, event_topic, snapshot_topic
from virga_events import REGISTRY, Envelope
from virga_runtime.journal import journal_prefix
from virga_runtime.snapshots import read_latest

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt]

HOST = "tcg-host"
GRACE = 20.0
HEARTBEAT = 1.0  # the scheduler marks a host down after 10 silent seconds
FORCED_OFF = (libvirt.VIR_DOMAIN_SHUTOFF, libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED)


@pytest.fixture(scope="module")
def stack(
    libvirtd: None, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("stall-stack"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        heartbeat_seconds=HEARTBEAT,
        compute_env={"VIRGA_STOP_GRACE_SECONDS": str(GRACE)},
    )
    with running_leaving_no_guest(stack):
        yield stack


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "stall") as api:
        yield api


def shutoff_reason(instance_id: str) -> tuple[int, int]:
    """(state, reason) of the instance's domain, as libvirtd tells it."""
    connection = libvirt.open(URI)
    try:
        state, reason = connection.lookupByName(f"virga-{instance_id}").state()
        return state, reason
    finally:
        connection.close()


async def compute_events(stack: Stack) -> list[Envelope]:
    return await read_events(stack.bootstrap, event_topic("compute", stack.namespace), REGISTRY)


def one_event(events: list[Envelope], kind: str, instance_id: str) -> Envelope:
    found = [e for e in events if e.type == kind and e.aggregate_id == instance_id]
    assert len(found) == 1, f"{len(found)} {kind} of {instance_id}: " + "; ".join(
        f"{e.producer} {e.occurred_at} {e.payload}" for e in found
    )
    return found[0]


def heartbeat_gaps(events: list[Envelope], start: datetime, end: datetime) -> list[float]:
    beats = sorted(
        e.occurred_at
        for e in events
        if e.type == "HostHeartbeat" and e.aggregate_id == HOST and start <= e.occurred_at <= end
    )
    edges = [start, *beats, end]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(edges)]


async def pending_operations(stack: Stack) -> list[bytes]:
    producer = f"compute@{HOST}"
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap)
    topic = snapshot_topic("compute", stack.namespace, HOST)
    latest = await read_latest(settings, topic, producer)
    return [key for key in latest if key.startswith(journal_prefix(producer))]


async def test_a_guest_ignoring_acpi_is_forced_off_while_the_host_beats_and_builds(
    stack: Stack, tenant: Api
) -> None:
    slow = (await tenant.create_instance("acpi-deaf"))["id"]
    await tenant.wait_status([slow], {"RUNNING"}, seconds=90)

    began = time.monotonic()
    await tenant.call("POST", f"/v1/instances/{slow}/actions", {"action": "stop"})
    # Meanwhile another instance is built on the same host, and runs before the stop ends.
    other = (await tenant.create_instance("meanwhile"))["id"]
    await tenant.wait_status([other], {"RUNNING"}, seconds=GRACE)
    assert (await tenant.instance(slow))["status"] == "RUNNING"  # still waiting on ACPI
    await tenant.wait_status([slow], {"STOPPED"}, seconds=GRACE + 60)
    took = time.monotonic() - began

    # The forced path: the whole grace went by, then the domain was destroyed.
    assert took >= GRACE
    assert shutoff_reason(slow) == (
        libvirt.VIR_DOMAIN_SHUTOFF,
        libvirt.VIR_DOMAIN_SHUTOFF_DESTROYED,
    )
    events = await compute_events(stack)
    stopped = one_event(events, "InstanceStopped", slow)
    started = one_event(events, "InstanceStarted", other)
    assert started.occurred_at < stopped.occurred_at
    api = await read_events(stack.bootstrap, event_topic("gateway", stack.namespace), REGISTRY)
    [request] = [e for e in api if e.type == "InstanceActionRequested" and e.aggregate_id == slow]
    gaps = heartbeat_gaps(events, request.occurred_at, stopped.occurred_at)
    # Heartbeats went on every period (a loaded 2-core machine may stretch one a little).
    assert max(gaps) < 4 * HEARTBEAT, gaps
    scheduler = await read_events(
        stack.bootstrap, event_topic("scheduler", stack.namespace), REGISTRY
    )
    assert [e for e in scheduler if e.type == "HostMarkedDown"] == []
    assert await pending_operations(stack) == []

    for iid in (slow, other):
        await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([slow, other], {"DELETED"}, seconds=GRACE + 60)


async def test_an_agent_killed_mid_stop_records_the_stop_once_after_restart(
    stack: Stack, tenant: Api
) -> None:
    iid = (await tenant.create_instance("killed-mid-stop"))["id"]
    await tenant.wait_status([iid], {"RUNNING"}, seconds=90)
    await tenant.call("POST", f"/v1/instances/{iid}/actions", {"action": "stop"})
    # The stop was decided and committed (its journal record is in), and it is under way.
    deadline = time.monotonic() + 30
    while not await pending_operations(stack):
        assert time.monotonic() < deadline, "the stop was never decided"
        await asyncio.sleep(0.2)
    stack.processes[f"compute-{HOST}"].kill()
    # The kill landed mid-operation: the guest still runs and no outcome was recorded.
    assert shutoff_reason(iid)[0] == libvirt.VIR_DOMAIN_RUNNING
    assert [e for e in await compute_events(stack) if e.aggregate_id == iid][-1].type == (
        "InstanceStarted"
    )
    assert len(await pending_operations(stack)) == 1

    stack.restart(f"compute-{HOST}")
    await tenant.wait_status([iid], {"STOPPED"}, seconds=GRACE + 90)
    assert shutoff_reason(iid) == FORCED_OFF
    events = await compute_events(stack)
    stopped = one_event(events, "InstanceStopped", iid)  # recorded exactly once
    # The restarted agent beat all along while the resumed stop waited out its grace.
    resumed = stopped.occurred_at - timedelta(seconds=GRACE - 2 * HEARTBEAT)
    gaps = heartbeat_gaps(events, resumed, stopped.occurred_at)
    assert max(gaps) < 4 * HEARTBEAT, gaps
    assert await pending_operations(stack) == []
    assert (await tenant.instance(iid))["status"] == "STOPPED"

    await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([iid], {"DELETED"}, seconds=60)
