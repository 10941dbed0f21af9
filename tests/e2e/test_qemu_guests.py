"""Real guests: the same stack with a compute agent on `qemu:///system`, TCG domains.

The guests boot firmware only (no image, so no disk), which is enough to prove the agent
drives a real QEMU process through libvirtd, and that a crashed agent finds its domains again
instead of duplicating them. Guests on RBD volumes: test_boot_from_volume.py.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import libvirt
import pytest
from tests.support.api import Api, new_tenant
from tests.support.kafka import following, read_events
from tests.support.stack import HostSpec, Stack

from virga_eventlog import KafkaSettings, event_topic
from virga_events import REGISTRY

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt]

URI = "qemu:///system"


@pytest.fixture(scope="module")
def stack(
    libvirtd: None, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("qemu-stack"),
        (HostSpec("tcg-host", "rack-1", libvirt_uri=URI),),
    )
    with running_leaving_no_guest(stack):
        yield stack


def virga_domain_names() -> set[str]:
    connection = libvirt.open(URI)
    try:
        return {d.name() for d in connection.listAllDomains() if d.name().startswith("virga-")}
    finally:
        connection.close()


@contextmanager
def running_leaving_no_guest(stack: Stack) -> Iterator[Stack]:
    """Run `stack`; at its end remove every Virga domain that appeared meanwhile, so a failed
    test leaves no guest behind."""
    before = virga_domain_names()
    try:
        with stack.running():
            yield stack
    finally:
        remove_domains(virga_domain_names() - before)


def remove_domains(names: set[str]) -> None:
    connection = libvirt.open(URI)
    try:
        for name in names:
            domain = connection.lookupByName(name)
            if domain.isActive():
                domain.destroy()
            domain.undefine()
    finally:
        connection.close()


@pytest.fixture
async def tenant(stack: Stack) -> AsyncIterator[Api]:
    async with new_tenant(stack.gateway_url, stack.admin_token, "qemu") as api:
        yield api


def domains(instance_ids: list[str]) -> dict[str, libvirt.virDomain]:
    connection = libvirt.open(URI)
    try:
        wanted = {f"virga-{i}" for i in instance_ids}
        return {d.name(): d for d in connection.listAllDomains() if d.name() in wanted}
    finally:
        connection.close()


def domain_state(name: str) -> tuple[int, str, int]:
    """(libvirt state, domain type, CPU time in ns) of a domain, read through libvirtd."""
    connection = libvirt.open(URI)
    try:
        domain = connection.lookupByName(name)
        state, _, _, _, cpu_time = domain.info()
        kind = domain.XMLDesc().split("type='", 1)[1].split("'", 1)[0]
        return state, kind, cpu_time
    finally:
        connection.close()


async def test_a_tcg_guest_runs_in_qemu_and_is_gone_after_delete(tenant: Api) -> None:
    instance = await tenant.create_instance("tcg-1")
    iid = instance["id"]
    [running] = await tenant.wait_status([iid], {"RUNNING"}, seconds=60)
    assert running["host"] == "tcg-host"
    name = f"virga-{iid}"
    state, kind, cpu_time = domain_state(name)
    assert state == libvirt.VIR_DOMAIN_RUNNING
    assert kind == "qemu"  # TCG: nested KVM is not available on these machines
    # The vCPU has executed guest code (the firmware, which then halts: there is no disk yet).
    assert cpu_time > 0
    await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status([iid], {"DELETED"}, seconds=60)
    assert domains([iid]) == {}


async def test_a_crashed_agent_finds_its_guests_again_without_duplicates(
    stack: Stack, tenant: Api
) -> None:
    settings = KafkaSettings(bootstrap_servers=stack.bootstrap)
    scheduler = event_topic("scheduler", stack.namespace)
    async with following(settings, scheduler, f"placements-{uuid.uuid4().hex[:6]}") as placed:
        created = await asyncio.gather(
            *(tenant.create_instance(f"tcg-crash-{i}") for i in range(4))
        )
        ids = [c["id"] for c in created]
        # The build has begun: every placement on the agent's host is in the log.
        for _ in range(600):
            if {e.aggregate_id for e in placed if e.type == "InstanceScheduled"} >= set(ids):
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the instances were never placed")
    stack.processes["compute-tcg-host"].kill()  # mid-build: some domains may exist already
    # ...and had not finished: not every guest was reported started when the agent died.
    compute = await read_events(stack.bootstrap, event_topic("compute", stack.namespace), REGISTRY)
    started = {e.aggregate_id for e in compute if e.type == "InstanceStarted"} & set(ids)
    assert len(started) < len(ids), "the agent was killed after the build had finished"
    stack.restart("compute-tcg-host")
    await tenant.wait_status(ids, {"RUNNING"}, seconds=90)
    found = domains(ids)
    assert sorted(found) == sorted(f"virga-{i}" for i in ids)  # one domain each, no more
    assert all(d.isActive() for d in found.values())
    for iid in ids:
        await tenant.call("DELETE", f"/v1/instances/{iid}")
    await tenant.wait_status(ids, {"DELETED"}, seconds=90)
    assert domains(ids) == {}
