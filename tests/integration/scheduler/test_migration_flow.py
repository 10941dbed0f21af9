"""The live migration flow hosted by the scheduler, against the real broker: the agents'
answers (written by the test) drive it to a moved claim, across a crash of the scheduler."""

from __future__ import annotations

import pytest
from tests.integration.scheduler.test_scheduler_service import (
    Cloud,
    cloud,
    decided,
    of_type,
)

from virga_eventlog import event_topic
from virga_events import Envelope, Event, new_event
from virga_events.catalog.api import LiveMigrationRequested
from virga_events.catalog.compute import InstanceMigrated, InstanceMigrationFailed
from virga_events.catalog.flows import FlowCompleted, FlowFailed
from virga_events.catalog.network import MigrationPortPlumbed, MigrationPortSwitched
from virga_events.catalog.scheduler import (
    InstanceMigrationRequested,
    InstanceScheduled,
    MigrationClaimMoved,
    MigrationDestinationReleased,
    MigrationPortPlumbRequested,
    MigrationPortSwitchRequested,
)

pytestmark = pytest.mark.kafka
__all__ = ["cloud"]  # the fixture, used by name


async def answer(cloud: Cloud, service: str, host: str, payload: Event) -> None:
    """An agent of `host` answers (on its family's topic: the test writes as every agent)."""
    async with cloud.writer.transaction() as txn:
        envelope = new_event(
            payload, aggregate_id="i1", tenant_id="t-1", producer=f"{service}@{host}"
        )
        await txn.append(event_topic(service, cloud.namespace), envelope)


def one(events: list[Envelope], kind: type[Event]) -> Event:
    found = of_type(events, kind)
    assert len(found) == 1, [e.type for e in events]
    payload: Event = found[0].payload
    return payload


async def placed(cloud: Cloud) -> tuple[str, str]:
    """i1 is placed; a migration of it is asked for. Returns (flow id, source host)."""
    await cloud.register_hosts()
    await cloud.request("i1")
    scheduled = one(await cloud.wait_for(decided(1)), InstanceScheduled)
    assert isinstance(scheduled, InstanceScheduled)
    async with cloud.writer.transaction() as txn:
        asked = new_event(
            LiveMigrationRequested(host=None),
            aggregate_id="i1",
            tenant_id="t-1",
            producer="gateway",
        )
        await txn.append(event_topic("gateway", cloud.namespace), asked)
    return asked.event_id, scheduled.host


async def test_a_migration_runs_to_a_moved_claim_across_a_crash_of_the_scheduler(
    cloud: Cloud,
) -> None:
    async with cloud.scheduler(snapshot=False):
        flow_id, source = await placed(cloud)
        events = await cloud.wait_for(lambda ev: bool(of_type(ev, MigrationPortPlumbRequested)))
    plumb = one(events, MigrationPortPlumbRequested)
    assert isinstance(plumb, MigrationPortPlumbRequested)
    destination = plumb.host
    assert destination != source
    # The scheduler died without a snapshot: the flow comes back from its events.
    async with cloud.scheduler():
        await answer(
            cloud,
            "network",
            destination,
            MigrationPortPlumbed(flow_id=flow_id, step="plumb", host=destination),
        )
        await cloud.wait_for(lambda ev: bool(of_type(ev, InstanceMigrationRequested)))
        moved = InstanceMigrated(
            flow_id=flow_id, step="migrate", host=source, destination=destination, seconds=1.0
        )
        await answer(cloud, "compute", source, moved)
        await cloud.wait_for(lambda ev: bool(of_type(ev, MigrationPortSwitchRequested)))
        await answer(
            cloud,
            "network",
            destination,
            MigrationPortSwitched(flow_id=flow_id, step="switch_port", host=destination),
        )
        events = await cloud.wait_for(lambda ev: bool(of_type(ev, FlowCompleted)))
    claim = one(events, MigrationClaimMoved)
    assert isinstance(claim, MigrationClaimMoved)
    assert (claim.source, claim.destination) == (source, destination)
    assert len(of_type(events, InstanceMigrationRequested)) == 1
    assert not of_type(events, FlowFailed)


async def test_a_failed_migration_releases_the_destination(cloud: Cloud) -> None:
    async with cloud.scheduler():
        flow_id, source = await placed(cloud)
        events = await cloud.wait_for(lambda ev: bool(of_type(ev, MigrationPortPlumbRequested)))
        destination = of_type(events, MigrationPortPlumbRequested)[0].payload.host
        await answer(
            cloud,
            "network",
            destination,
            MigrationPortPlumbed(flow_id=flow_id, step="plumb", host=destination),
        )
        await cloud.wait_for(lambda ev: bool(of_type(ev, InstanceMigrationRequested)))
        await answer(
            cloud,
            "compute",
            source,
            InstanceMigrationFailed(
                flow_id=flow_id, step="migrate", host=source, reason="migration aborted after 300 s"
            ),
        )
        events = await cloud.wait_for(lambda ev: bool(of_type(ev, FlowFailed)))
    failed = one(events, FlowFailed)
    assert isinstance(failed, FlowFailed)
    assert failed.reason == "migration aborted after 300 s"
    released = one(events, MigrationDestinationReleased)
    assert isinstance(released, MigrationDestinationReleased)
    assert released.host == destination
