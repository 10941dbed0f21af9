"""`virga audit` against the real broker: chains written by the real writer, forgeries,
removals, traces across topics and past states of the scheduler."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from click.testing import CliRunner

from virga_audit import RecordLocation, replay, trace, verify
from virga_cli.main import cli
from virga_eventlog import SERVICES, EventWriter, KafkaSettings, TopicSpec, ensure_topics
from virga_eventlog import event_topic as topic_of
from virga_events import Envelope, Event, encode, new_event, record_hash
from virga_events.catalog import Flavor
from virga_events.catalog.api import InstanceRequested
from virga_events.catalog.compute import HostHeartbeat, HostRegistered, InstanceStarted
from virga_events.catalog.scheduler import InstanceScheduled

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
TINY = Flavor(name="m1.tiny", vcpus=1, ram_mb=256, disk_gb=1)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def fresh_namespace(bootstrap: str) -> KafkaSettings:
    namespace = f"audit-{uuid.uuid4().hex[:8]}"
    settings = KafkaSettings(bootstrap_servers=bootstrap, namespace=namespace)
    await ensure_topics(settings, [TopicSpec(topic_of(s, namespace), 3) for s in SERVICES])
    return settings


def event(
    payload: Event,
    aggregate_id: str,
    producer: str,
    seconds: float,
    causation: Envelope | None = None,
) -> Envelope:
    return new_event(
        payload,
        aggregate_id=aggregate_id,
        tenant_id=None,
        producer=producer,
        causation=causation,
        occurred_at=at(seconds),
    )


def requested(instance_id: str, seconds: float) -> Envelope:
    return event(InstanceRequested(name=instance_id, flavor=TINY), instance_id, "gateway", seconds)


def scheduled(cause: Envelope, host: str, seconds: float) -> Envelope:
    payload = InstanceScheduled(
        host=host, rack="r1", zone="az1", attempt=1, name=cause.aggregate_id, flavor=TINY
    )
    return event(payload, cause.aggregate_id, "scheduler", seconds, cause)


def registered(host: str, seconds: float) -> Envelope:
    payload = HostRegistered(rack="r1", zone="az1", vcpus=4, ram_mb=4096, disk_gb=40)
    return event(payload, host, f"compute@{host}", seconds)


async def write(settings: KafkaSettings, service: str, envelopes: Iterable[Envelope]) -> None:
    """Append through the real chaining writer, one transaction per event."""
    topic = topic_of(service, settings.namespace)
    txn_id = f"{settings.namespace}-{service}-{uuid.uuid4().hex[:6]}"
    async with EventWriter(settings, transactional_id=txn_id) as writer:
        for envelope in envelopes:
            async with writer.transaction() as txn:
                await txn.append(topic, envelope)


async def produce_raw(settings: KafkaSettings, service: str, value: bytes) -> RecordLocation:
    """Append as any client could, around the writer; return where the record landed."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        topic = topic_of(service, settings.namespace)
        metadata = await producer.send_and_wait(topic, key=b"forged", value=value)
    finally:
        await producer.stop()
    return RecordLocation(metadata.topic, metadata.partition, metadata.offset)


async def two_producers(settings: KafkaSettings) -> list[Envelope]:
    """Three requests from the gateway and a host's registration and heartbeats."""
    requests = [requested(f"i-{n}", n) for n in range(1, 4)]
    host = [registered("h1", 0)] + [
        event(HostHeartbeat(running=0), "h1", "compute@h1", n) for n in range(1, 3)
    ]
    await asyncio.gather(write(settings, "gateway", requests), write(settings, "compute", host))
    return requests


async def test_chains_written_by_the_writer_verify(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    await two_producers(settings)
    report = await verify(settings)
    assert report.ok, report
    assert [(p.producer, p.events, p.last_seq) for p in report.producers] == [
        ("compute@h1", 3, 3),
        ("gateway", 3, 3),
    ]


async def test_a_forged_copy_of_an_event_is_reported_exactly(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    await two_producers(settings)
    [genuine] = [e for e in await trace(settings, "i-2") if e.producer == "gateway"]
    assert genuine.seq == 2
    # Same seq, same link to seq 1, a bigger flavor: what someone with write access could add.
    huge = Flavor(name="m1.huge", vcpus=64, ram_mb=262144, disk_gb=2000)
    forged = msgspec.structs.replace(
        genuine, event_id=str(uuid.uuid4()), payload=InstanceRequested(name="i-2", flavor=huge)
    )
    location = await produce_raw(settings, "gateway", encode(forged))
    report = await verify(settings)
    [problem] = report.problems
    assert (problem.producer, problem.kind, problem.seq) == ("gateway", "forged", 2)
    assert (problem.location, problem.event_id) == (location, forged.event_id)
    assert not report.undecodable


async def test_a_removed_event_is_reported_as_its_seq(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    await two_producers(settings)
    prev_hash, locations = "", []
    for seq in range(1, 5):
        cause = requested(f"i-{seq}", seq)
        value = encode(scheduled(cause, "h1", seq + 0.5).chained(seq, prev_hash))
        prev_hash = record_hash(value)
        if seq != 3:  # seq 3 is "removed": seq 4 still carries its hash
            locations.append(await produce_raw(settings, "scheduler", value))
    report = await verify(settings)
    [problem] = report.problems
    assert (problem.producer, problem.kind, problem.seq) == ("scheduler", "removed", 3)
    assert problem.related == locations[2]


async def test_trace_follows_a_request_across_topics(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    request, other = requested("i-1", 1), requested("i-2", 2)
    placement = scheduled(request, "h1", 3)
    started = event(InstanceStarted(host="h1"), "i-1", "compute@h1", 4, placement)
    # Same causal tree, another aggregate: part of the trace through its correlation.
    beat = event(HostHeartbeat(running=1), "h1", "compute@h1", 5, started)
    lone_beat = event(HostHeartbeat(running=0), "h1", "compute@h1", 6)
    await write(settings, "gateway", [request, other])
    await write(settings, "scheduler", [placement, scheduled(other, "h1", 3.5)])
    await write(settings, "compute", [started, beat, lone_beat])
    found = await trace(settings, "i-1")
    assert [e.event_id for e in found] == [
        request.event_id,
        placement.event_id,
        started.event_id,
        beat.event_id,
    ]
    assert {e.correlation_id for e in found} == {request.event_id}
    assert await trace(settings, "i-404") == []


async def test_replay_gives_the_scheduler_state_of_each_instant(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    request = requested("i-1", 10)
    await write(settings, "compute", [registered("h1", 0)])
    await write(settings, "gateway", [request])
    await write(settings, "scheduler", [scheduled(request, "h1", 20)])

    before = await replay(settings, "scheduler", at(5))
    assert [h[0] for h in before["hosts"]] == ["h1"]
    assert before["instances"] == []
    assert before["claims"] == []

    between = await replay(settings, "scheduler", at(15))
    assert [(r["id"], r["status"]) for r in between["instances"]] == [("i-1", "pending")]

    after = await replay(settings, "scheduler", at(30))
    assert [(r["id"], r["status"]) for r in after["instances"]] == [("i-1", "scheduled")]
    assert after["claims"] == [["i-1", "h1", 1, 256, 1]]


def test_the_cli_exits_1_on_a_forgery_and_prints_traces_and_states(kafka_bootstrap: str) -> None:
    settings = asyncio.run(fresh_namespace(kafka_bootstrap))
    requests = asyncio.run(two_producers(settings))
    placement = scheduled(requests[0], "h1", 1.5)
    # A second placement, so that seq 1 has a successor to vouch for the genuine record.
    asyncio.run(write(settings, "scheduler", [placement, scheduled(requests[1], "h1", 2.5)]))
    where = ["--bootstrap", kafka_bootstrap, "--namespace", settings.namespace]
    runner = CliRunner()

    clean = runner.invoke(cli, ["audit", "verify", *where])
    assert clean.exit_code == 0, clean.output
    assert "chains intact" in clean.output

    traced = runner.invoke(cli, ["audit", "trace", "i-1", "--json", *where])
    assert traced.exit_code == 0, traced.output
    assert [e["type"] for e in orjson.loads(traced.output)] == [
        "InstanceRequested",
        "InstanceScheduled",
    ]
    table = runner.invoke(cli, ["audit", "trace", "i-1", *where])
    assert placement.event_id in table.output
    assert table.output.splitlines()[0].split() == [
        "time",
        "producer",
        "type",
        "event_id",
        "causation_id",
    ]

    agent = runner.invoke(
        cli,
        [
            "audit",
            "replay",
            "--until",
            "2026-11-23T12:00:02Z",
            "--service",
            "compute",
            "--host",
            "h1",
            *where,
        ],
    )
    assert agent.exit_code == 0, agent.output
    agent_state = orjson.loads(agent.output)
    assert agent_state["host"] == "h1"
    assert [i["instance_id"] for i in agent_state["instances"]] == ["i-1"]
    gateway = runner.invoke(
        cli, ["audit", "replay", "--until", "2026-11-23T12:00:02", "--service", "gateway", *where]
    )
    assert gateway.exit_code == 0, gateway.output
    assert "h1" in gateway.output
    no_host = runner.invoke(
        cli, ["audit", "replay", "--until", "2026-11-23", "--service", "compute", *where]
    )
    assert no_host.exit_code == 2
    assert "needs its host" in no_host.output

    forged = msgspec.structs.replace(placement, event_id=str(uuid.uuid4()), seq=1)
    asyncio.run(produce_raw(settings, "scheduler", encode(forged)))
    tampered = runner.invoke(cli, ["audit", "verify", *where])
    assert tampered.exit_code == 1
    assert f"FORGED scheduler: seq 1 (event {forged.event_id}" in tampered.output
    as_json = runner.invoke(cli, ["audit", "verify", "--json", *where])
    assert as_json.exit_code == 1
    report = orjson.loads(as_json.output)
    assert report["ok"] is False
    [problem] = report["problems"]
    assert problem["event_id"] == forged.event_id
    assert problem["location"]["topic"] == f"{settings.namespace}.scheduler"


async def crash_mid_transaction(writer: EventWriter, topic: str, envelope: Envelope) -> None:
    async with writer.transaction() as txn:
        await txn.append(topic, envelope)
        raise RuntimeError("the service crashed mid-decision")


async def test_an_aborted_transaction_is_no_part_of_the_chain(kafka_bootstrap: str) -> None:
    settings = await fresh_namespace(kafka_bootstrap)
    topic = topic_of("gateway", settings.namespace)
    async with EventWriter(settings, transactional_id=f"{settings.namespace}-gw") as writer:
        async with writer.transaction() as txn:
            await txn.append(topic, requested("i-1", 1))
        with pytest.raises(RuntimeError):
            await crash_mid_transaction(writer, topic, requested("i-2", 2))  # seq 2, aborted
        async with writer.transaction() as txn:
            await txn.append(topic, requested("i-3", 3))  # seq 2 again, committed
    report = await verify(settings)
    assert report.ok, report
    assert [(p.producer, p.events, p.last_seq) for p in report.producers] == [("gateway", 2, 2)]


def test_check_allows_the_overcommit_the_scheduler_is_configured_for(kafka_bootstrap: str) -> None:
    settings = asyncio.run(fresh_namespace(kafka_bootstrap))
    one_cpu = HostRegistered(rack="r1", zone="az1", vcpus=1, ram_mb=4096, disk_gb=40)
    requests = [requested(f"i-{n}", n) for n in range(1, 6)]
    asyncio.run(write(settings, "compute", [event(one_cpu, "h1", "compute@h1", 0)]))
    asyncio.run(write(settings, "gateway", requests))
    # Five 1-vCPU instances on one physical vCPU: what a scheduler run with a cpu ratio of 8
    # places, and never one with the default 4.
    asyncio.run(write(settings, "scheduler", [scheduled(r, "h1", 10) for r in requests]))
    where = ["--bootstrap", kafka_bootstrap, "--namespace", settings.namespace]
    arguments = ["audit", "check", "--at", "2026-11-23T12:01:00Z", *where]
    runner = CliRunner()

    configured = runner.invoke(cli, arguments, env={"VIRGA_CPU_ALLOCATION_RATIO": "8"})
    assert configured.exit_code == 0, configured.output
    assert "all invariants hold" in configured.output
    by_default = runner.invoke(cli, arguments, env={"VIRGA_CPU_ALLOCATION_RATIO": None})
    assert by_default.exit_code == 1, by_default.output
    assert "VIOLATION overcommitted h1: vcpus 5 claimed > 1 x 4" in by_default.output
