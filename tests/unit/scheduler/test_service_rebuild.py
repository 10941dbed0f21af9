"""Restarts: a snapshot, or a rebuild from the log, gives back the state that decided live.

A rebuild folds every input already decided on first, partitions in an order of their own,
and only then the scheduler's own events. These tests replay random live runs that way.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from tests.unit.scheduler.service_support import (
    Scheduler,
    deleted,
    deletion_requested,
    event,
    failed,
    group_created,
    heartbeat,
    registered,
    requested,
)

from virga_events import Envelope
from virga_events.catalog.api import AllocationRatiosSet, HostDisabled, HostEnabled
from virga_events.catalog.compute import HostHeartbeat, HostRegistered, InstanceDeleted
from virga_events.catalog.compute import InstanceFailed as InstanceFailedEvent
from virga_scheduler.config import SchedulerConfig
from virga_scheduler.core import snapshot
from virga_scheduler.core.fold import evolve
from virga_scheduler.core.model import SchedulerState

CONFIG = SchedulerConfig(heartbeat_timeout_seconds=20, server_group_wait_seconds=30)
HOSTS = [f"h{n}" for n in range(6)]
COMPUTE_EVENTS = (HostRegistered, HostHeartbeat, InstanceFailedEvent, InstanceDeleted)


def live_run(seed: int, steps: int = 150) -> Scheduler:
    """A random life of a small cloud, decided live: requests (some before their server group
    exists), failed spawns, deletions, agents going silent and coming back, admin changes."""
    rng = random.Random(seed)
    scheduler = Scheduler(CONFIG)
    for n, name in enumerate(HOSTS):
        scheduler.feed(registered(name, rack=f"r{n % 3}", ram_mb=rng.choice((4096, 8192))))
    groups = {"g-anti-rack": ("anti-affinity", "rack"), "g-aff": ("affinity", "host")}
    created: set[str] = set()
    requested_ids: list[str] = []
    for t in range(1, steps):
        roll = rng.random()
        claims = scheduler.state.claims
        if roll < 0.3:
            iid = f"i{t:03d}"
            group = rng.choice([None, None, *groups])
            scheduler.feed(requested(iid, group=group, seconds=t))
            requested_ids.append(iid)
        elif roll < 0.37 and len(created) < len(groups):
            gid = rng.choice(sorted(set(groups) - created))
            created.add(gid)
            scheduler.feed(group_created(gid, *groups[gid]))
        elif roll < 0.5 and len(claims):
            claim = rng.choice(claims.all())
            scheduler.feed(failed(claim.instance_id, claim.host, reason=f"fault {t}"))
        elif roll < 0.6 and requested_ids:
            scheduler.feed(deletion_requested(rng.choice(requested_ids)))
        elif roll < 0.7:
            asked = [r for r in scheduler.state.instances.values() if r.deletion_requested]
            placed = [(r.instance_id, scheduler.host_of(r.instance_id)) for r in asked]
            for iid, host in placed:
                if host is not None:
                    scheduler.feed(deleted(iid, host))
        elif roll < 0.85:
            for host in rng.sample(HOSTS, 4):
                scheduler.feed(heartbeat(host, t))
        elif roll < 0.95:
            scheduler.tick(t)
        else:
            host = rng.choice(HOSTS)
            admin = rng.choice(
                [
                    (HostDisabled(reason="maintenance"), host),
                    (HostEnabled(), host),
                    (AllocationRatiosSet(cpu=2.0, ram=1.5, disk=1.0), host),
                    (AllocationRatiosSet(cpu=8.0, ram=1.0, disk=1.0), "*"),
                ]
            )
            scheduler.feed(event(admin[0], admin[1]))
    return scheduler


def partition_order(inputs: list[Envelope], rng: random.Random) -> Iterator[Envelope]:
    """The inputs as a rebuild may read them: each (topic, key) stream in order, streams
    interleaved at random."""
    streams: dict[tuple[bool, str], list[Envelope]] = {}
    for envelope in inputs:
        compute = isinstance(envelope.payload, COMPUTE_EVENTS)
        streams.setdefault((compute, envelope.aggregate_id), []).append(envelope)
    queues = [list(reversed(s)) for s in streams.values()]
    while queues:
        queue = rng.choice(queues)
        yield queue.pop()
        if not queue:
            queues.remove(queue)


def rebuild(scheduler: Scheduler, rng: random.Random) -> SchedulerState:
    state = SchedulerState(CONFIG.ratios)
    for envelope in partition_order(scheduler.inputs, rng):
        state = evolve(state, envelope)
    for envelope in scheduler.outputs:
        state = evolve(state, envelope)
    return state


def comparable(state: SchedulerState) -> dict[str, Any]:
    data = snapshot.snapshot(state)
    data["deleted"] = sorted(data["deleted"])  # their age order depends on the read order
    return data


def next_requests() -> list[Envelope]:
    return [requested(f"after{n}", group="g-anti-rack" if n % 2 else None) for n in range(8)]


@pytest.mark.parametrize("seed", range(30))
def test_rebuilding_inputs_first_then_own_events_gives_the_live_state(seed: int) -> None:
    live = live_run(seed)
    assert live.outputs, "the run decided nothing"
    rng = random.Random(seed)
    for _ in range(3):
        rebuilt = rebuild(live, rng)
        assert comparable(rebuilt) == comparable(live.state)
        assert rebuilt.claims.all() == live.state.claims.all()


@pytest.mark.parametrize("seed", range(10))
def test_a_rebuilt_scheduler_decides_the_next_requests_as_the_live_one_would(seed: int) -> None:
    live = live_run(seed)
    restarted = Scheduler(CONFIG, rebuild(live, random.Random(seed)))
    nothing_new = [heartbeat(h, 200) for h in HOSTS]
    assert restarted.feed(*nothing_new, *next_requests()) == live.feed(
        *nothing_new, *next_requests()
    )


@pytest.mark.parametrize("seed", range(10))
def test_snapshot_then_restore_gives_equal_state_and_equal_decisions(seed: int) -> None:
    live = live_run(seed)
    data = orjson.loads(orjson.dumps(snapshot.snapshot(live.state)))  # plain JSON on the wire
    restored = Scheduler(CONFIG, snapshot.restore(data, CONFIG.ratios))
    assert snapshot.snapshot(restored.state) == snapshot.snapshot(live.state)
    later = [*(heartbeat(h, 200) for h in HOSTS), *next_requests()]
    assert restored.feed(*later) == live.feed(*later)
    assert restored.tick(300) == live.tick(300)


def test_a_placement_folded_after_the_deletion_it_preceded_live_leaves_no_claim() -> None:
    # Live: placed, deletion requested, agent deleted it, claim released. A rebuild folds the
    # deletion and the agent's report before the placement and the release.
    live = Scheduler(CONFIG)
    live.feed(registered("h1"), requested("i1"), deletion_requested("i1"), deleted("i1", "h1"))
    inputs_first = SchedulerState(CONFIG.ratios)
    for envelope in [*live.inputs, *live.outputs]:
        inputs_first = evolve(inputs_first, envelope)
    assert inputs_first.claims.all() == live.state.claims.all() == []
    assert inputs_first.instances == live.state.instances == {}


def test_a_snapshot_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="known format"):
        snapshot.restore({"format": 99})
