"""The compute agents' part in a live migration between two real libvirtd daemons on this
machine (`virga_devstack.libvirt_host`): host A's agent decides on InstanceMigrationRequested,
its effect moves the TCG guest on RBD to B through `LibvirtDriver.migrate_live` and answers
InstanceMigrated; A forgets the instance without touching the guest, B adopts it once the
flow's step completed, and B's power sync finds it running there.

The agents' cores and effect handlers run in the test (as the runner would run them), over the
lab's drivers: the flow through Kafka is `test_migration_through_api.py`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.support.libvirt_hosts import two_libvirt_hosts
from tests.support.migration_lab import (
    Host,
    ceph_settings,
    drivers,
    guest_on,
    guest_uptime,
    state,
)

from virga_compute.ceph_access import CephSettings
from virga_compute.config import ComputeConfig
from virga_compute.core.decide import decide
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.power import PowerSynced, on_guest
from virga_compute.core.spec import DomainState
from virga_compute.effects.intents import MigrateLive
from virga_compute.effects.migration import migration_handlers
from virga_devstack.ceph import CephCluster
from virga_devstack.guest import GuestBoot, ensure_guest
from virga_devstack.libvirt_host import LibvirtHost
from virga_events import Envelope, Event, new_event
from virga_events.catalog import Flavor
from virga_events.catalog.compute import InstanceMigrated, InstanceStarted
from virga_events.catalog.flows import FlowStepCompleted
from virga_events.catalog.scheduler import InstanceMigrationRequested, InstanceScheduled

pytestmark = [pytest.mark.libvirt]
__all__ = ["two_libvirt_hosts"]  # the fixture, imported to be used here

TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=128, disk_gb=1)


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


def placed(instance_id: str, host: str) -> InstanceScheduled:
    return InstanceScheduled(
        host=host, rack="r1", zone="z1", attempt=1, name=instance_id, flavor=TINY
    )


def envelope(event: Event, aggregate: str, producer: str) -> Envelope:
    return new_event(event, aggregate_id=aggregate, tenant_id="t-1", producer=producer)


async def test_the_source_agent_moves_the_guest_and_the_destination_adopts_it(
    hosts: tuple[Host, ...],
    ceph_cluster: CephCluster,
    ceph: CephSettings,
    guest: GuestBoot,
    tmp_path: Path,
) -> None:
    a, b = hosts
    async with guest_on(a, (b,), ceph_cluster, ceph, guest, tmp_path) as instance_id:
        # A's agent runs the guest (its placement and its start are in its fold).
        source = ComputeState("hv-a")
        for event in (
            envelope(placed(instance_id, "hv-a"), instance_id, "scheduler"),
            envelope(InstanceStarted(host="hv-a"), instance_id, "compute@hv-a"),
        ):
            source = evolve(source, event)
        destination = ComputeState("hv-b")
        before = await asyncio.to_thread(guest_uptime, a.info.uri, instance_id)

        # The scheduler's request, with B as its HostRegistered announced it.
        asked = envelope(
            InstanceMigrationRequested(
                flow_id="flow-1",
                step="migrate",
                source="hv-a",
                destination="hv-b",
                destination_uri=b.info.peer_uri,
                migration_address=b.info.migration_address,
                placement=placed(instance_id, "hv-b"),
            ),
            instance_id,
            "scheduler",
        )
        source, destination = evolve(source, asked), evolve(destination, asked)
        config = ComputeConfig(host="hv-a", migration_timeout_seconds=120)
        (intent,) = decide(config, source, asked)
        assert isinstance(intent, MigrateLive)
        assert not decide(ComputeConfig(host="hv-b"), destination, asked)

        (answer,) = await migration_handlers(a.driver)[MigrateLive](intent)
        moved = answer.payload
        assert isinstance(moved, InstanceMigrated)
        assert (moved.host, moved.destination, moved.flow_id) == ("hv-a", "hv-b", "flow-1")
        assert moved.seconds > 0
        assert await state(a, instance_id) is DomainState.MISSING
        assert await state(b, instance_id) is DomainState.RUNNING
        # The same guest, its clock ran on: never rebooted.
        assert await asyncio.to_thread(guest_uptime, b.info.uri, instance_id) > before

        # The journal runs the effect again after a crash cut its answer off: gone from A, it
        # asks B, finds it running there and answers the same, moving nothing. (B's peer URI
        # is reachable from A's libvirtd, in its namespace; the test reaches B by its socket.)
        replayed = replace(intent, destination_uri=b.info.uri)
        (again,) = await migration_handlers(a.driver)[MigrateLive](replayed)
        assert isinstance(again.payload, InstanceMigrated)
        assert again.payload.destination == "hv-b"
        assert not await b.driver.runs_at(a.info.uri, instance_id)
        assert await state(b, instance_id) is DomainState.RUNNING

        # A forgets it without destroying anything; B adopts it once the step completed.
        source = evolve(source, envelope(moved, instance_id, "compute@hv-a"))
        assert source.mine(instance_id) is None
        completed = envelope(FlowStepCompleted(step="migrate"), "flow-1", "scheduler")
        destination = evolve(destination, completed)
        record = destination.mine(instance_id)
        assert record is not None
        assert record.status == "running"
        # B's power sync reads its hypervisor: the guest runs as recorded, nothing to report;
        # A's finds no record to report about.
        now = datetime.now(UTC)
        on_b = PowerSynced(tuple(await b.driver.list_instances()), now)
        assert not on_guest(ComputeConfig(host="hv-b"), destination, on_b)
        on_a = PowerSynced(tuple(await a.driver.list_instances()), now)
        assert not on_guest(config, source, on_a)
