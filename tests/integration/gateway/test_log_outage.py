"""An honest gateway while the event log is away (issue 14, section 2), on a broker of its own.

A burst of keyed POSTs runs while the broker is stopped and started again; clients retry with
the same Idempotency-Key on 503 and on connection errors. Afterwards, read from the log: every
key made exactly one instance, and no client saw a 2xx for anything that did not commit.
Meanwhile /healthz went 503 within seconds of the stop and 200 again after the restart, a write
got 503 with Retry-After within the write timeout, and reads answered 200 from the projection
saying how stale it was.

The broker is this test's own (port $VIRGA_FAULTS_KAFKA_PORT, else the session broker's + 2,
and the next one for its controller): stopping the session's broker would disturb other tests.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import aiohttp
import pytest
from tests.integration.gateway.harness import Gateway, Reply
from tests.support.kafka import read_events

from virga_devstack.kafka import KafkaBroker
from virga_eventlog import event_topic
from virga_events import REGISTRY, Envelope
from virga_events.catalog import api
from virga_gateway.logwatch import UNREACHABLE_AFTER_SECONDS
from virga_gateway.middleware import PROJECTION_AGE_HEADER
from virga_runtime.runner import STOP_SECONDS

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(420)]

SESSION_PORT = int(os.environ.get("VIRGA_TEST_KAFKA_PORT", "19192"))
KAFKA_PORT = int(os.environ.get("VIRGA_FAULTS_KAFKA_PORT", str(SESSION_PORT + 2)))
KEYS = 200
WORKERS = 20
STOP_AFTER = 60
"""Keys committed before the broker is stopped: the rest of the burst meets the outage."""
WRITE_TIMEOUT = 3.0
DOUBTFUL = 8
"""Writes made to be in doubt, one after the other."""
SLACK = 3.0
"""Scheduling slack on a loaded machine, on top of every bound asserted."""


@pytest.fixture(scope="module")
def broker() -> Iterator[KafkaBroker]:
    broker = KafkaBroker(KAFKA_PORT, controller_port=KAFKA_PORT + 1)
    broker.start(fresh=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def gateway(broker: KafkaBroker) -> AsyncIterator[Gateway]:
    running = await Gateway.create(broker.bootstrap_servers, write_timeout_seconds=WRITE_TIMEOUT)
    try:
        yield running
    finally:
        await running.close()


@dataclass
class Burst:
    """What the clients of the burst saw."""

    token: str
    accepted: dict[str, Reply] = field(default_factory=dict)
    """Each key's 2xx answer."""
    refused: int = 0
    """503s and connection errors, each retried."""
    health: list[tuple[float, int]] = field(default_factory=list)
    """(monotonic time, /healthz status), polled all along."""


async def post_until_accepted(gateway: Gateway, burst: Burst, key: str) -> None:
    """POST one instance with `key` until a 2xx, retrying 503s and errors with the same key."""
    while True:
        try:
            reply = await gateway.call(
                "POST",
                "/v1/instances",
                token=burst.token,
                json={"name": key, "flavor": "m1.tiny"},
                headers={"Idempotency-Key": key},
            )
        except (aiohttp.ClientError, OSError):
            burst.refused += 1
            await asyncio.sleep(0.5)
            continue
        if reply.status == 202:
            burst.accepted[key] = reply
            return
        assert reply.status == 503, reply.body
        burst.refused += 1
        await asyncio.sleep(float(reply.headers["Retry-After"]))


async def run_burst(gateway: Gateway, burst: Burst, keys: asyncio.Queue[str]) -> None:
    while not keys.empty():
        await post_until_accepted(gateway, burst, keys.get_nowait())


async def watch_health(gateway: Gateway, burst: Burst) -> None:
    while True:
        reply = await gateway.call("GET", "/healthz", token=None)
        burst.health.append((time.monotonic(), reply.status))
        await asyncio.sleep(0.2)


def first_health(burst: Burst, status: int, after: float) -> float:
    return next(t for t, s in burst.health if t >= after and s == status)


async def wait_for(condition: object, seconds: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


async def test_a_burst_of_keyed_writes_through_a_broker_restart(
    gateway: Gateway, broker: KafkaBroker
) -> None:
    _, token = await gateway.tenant()
    burst = Burst(token)
    keys: asyncio.Queue[str] = asyncio.Queue()
    for i in range(KEYS):
        keys.put_nowait(f"burst-{i:03d}")
    health = asyncio.create_task(watch_health(gateway, burst))
    workers = [asyncio.create_task(run_burst(gateway, burst, keys)) for _ in range(WORKERS)]

    await wait_for(lambda: len(burst.accepted) >= STOP_AFTER, 60)
    stopping = time.monotonic()
    await asyncio.to_thread(broker.stop)
    stopped = time.monotonic()

    # /healthz: 503 within a few seconds of the stop.
    await wait_for(lambda: burst.health[-1][1] == 503, UNREACHABLE_AFTER_SECONDS * 2 + SLACK)
    assert first_health(burst, 503, stopping) - stopped <= UNREACHABLE_AFTER_SECONDS * 2 + SLACK

    # A write: 503 with Retry-After, within the write timeout.
    started = time.monotonic()
    write = await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": "outage", "flavor": "m1.tiny"},
        headers={"Idempotency-Key": "outage"},
    )
    assert write.status == 503, write.body
    assert int(write.headers["Retry-After"]) >= 1
    assert write.body["type"].endswith("log-unavailable")
    assert time.monotonic() - started <= WRITE_TIMEOUT + SLACK

    # Reads: 200 from the projection, saying how stale it is, the age growing.
    listed_during_outage: set[str] = set()
    ages: list[int] = []
    while not ages or ages[-1] < UNREACHABLE_AFTER_SECONDS:
        assert len(ages) < 100, ages
        read = await gateway.call("GET", "/v1/instances?limit=200", token=token)
        assert read.status == 200
        ages.append(int(read.headers[PROJECTION_AGE_HEADER]))
        listed_during_outage |= {item["id"] for item in read.body["items"]}
        await asyncio.sleep(0.2)
    assert ages == sorted(ages), "the age only grows while the log is away"

    await asyncio.to_thread(broker.start)
    restarted = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*workers), 180)
    await post_until_accepted(gateway, burst, "outage")
    await wait_for(lambda: burst.health[-1][1] == 200, 60)
    health.cancel()
    assert first_health(burst, 200, restarted) > restarted
    fresh = await gateway.call("GET", "/v1/instances?limit=1", token=token)
    assert int(fresh.headers[PROJECTION_AGE_HEADER]) <= 2

    # Against the log: exactly one instance per key, and every 2xx a client saw committed.
    events = await read_events(
        broker.bootstrap_servers, event_topic("gateway", gateway.namespace), REGISTRY
    )
    requested = [e for e in events if isinstance(e.payload, api.InstanceRequested)]
    names = [e.payload.name for e in requested]
    assert sorted(names) == sorted(burst.accepted), "one instance per key, nothing else"
    committed = {e.aggregate_id for e in requested}
    assert {reply.body["id"] for reply in burst.accepted.values()} == committed
    assert listed_during_outage <= committed, "a read showed an uncommitted write"
    recorded = [e for e in events if isinstance(e.payload, api.IdempotentRequestRecorded)]
    assert sorted(e.payload.key for e in recorded) == sorted(burst.accepted)
    assert burst.refused > 0, "the outage met the burst"
    assert len(listed_during_outage) >= STOP_AFTER

    # The projection agrees with the log.
    listed = await gateway.call("GET", "/v1/instances?limit=200", token=token)
    more = await gateway.call(
        "GET", f"/v1/instances?limit=200&cursor={listed.body['next']}", token=token
    )
    ids = {item["id"] for item in listed.body["items"] + more.body["items"]}
    assert ids == committed


async def test_writes_confirmed_too_late_are_settled_against_the_log(gateway: Gateway) -> None:
    """Every transaction is in doubt (confirmed after a zero deadline): each write answers
    503, the gateway fences its producer and reads its own topic back; then the projection
    holds exactly what committed, and a retry with the key replays it or does it once."""
    _, token = await gateway.tenant()
    runner = gateway.runner
    assert runner is not None
    runner.commit_seconds = 0.0
    keys = [f"doubt-{i}" for i in range(DOUBTFUL)]
    for key in keys:
        first = await post(gateway, token, key)
        assert first.status == 503, first.body
        await wait_for(lambda: not runner.recovering, 60)
    runner.commit_seconds = WRITE_TIMEOUT

    committed = {e.payload.name: e.aggregate_id for e in await requested(gateway)}
    listed = await gateway.call("GET", "/v1/instances?limit=200", token=token)
    assert {item["name"]: item["id"] for item in listed.body["items"]} == committed

    for key in keys:
        retry = await post(gateway, token, key)
        assert retry.status == 202, retry.body
        replayed = retry.headers.get("Idempotent-Replayed") == "true"
        assert replayed == (key in committed), key
        assert retry.body["id"] == committed.get(key, retry.body["id"])
    names = [e.payload.name for e in await requested(gateway)]
    assert sorted(names) == keys
    print(f"in doubt: {len(committed)} of {DOUBTFUL} had committed")


async def post(gateway: Gateway, token: str, key: str) -> Reply:
    return await gateway.call(
        "POST",
        "/v1/instances",
        token=token,
        json={"name": key, "flavor": "m1.tiny"},
        headers={"Idempotency-Key": key},
    )


async def requested(gateway: Gateway) -> list[Envelope[api.InstanceRequested]]:
    topic = event_topic("gateway", gateway.namespace)
    events = await read_events(gateway.settings.bootstrap_servers, topic, REGISTRY)
    return [e for e in events if isinstance(e.payload, api.InstanceRequested)]


STOP_BOUND = 2 * STOP_SECONDS
"""A stop finishes within this, whatever the log does: the producer and the consumer are each
given `STOP_SECONDS` to stop (the in-doubt write has already waited out its write timeout)."""


@pytest.mark.timeout(60)
async def test_a_gateway_stopped_while_the_log_is_away_stops_in_time(
    gateway: Gateway, broker: KafkaBroker
) -> None:
    """Broker stopped, a write in doubt, then the gateway is stopped: it stops within a bound
    instead of waiting on its stuck producer. A new gateway started on the same log once the
    broker is back serves every key exactly once: the keys committed before replay, the one
    in doubt is done once."""
    _, token = await gateway.tenant()
    before = [f"before-{i}" for i in range(3)]
    for key in before:
        assert (await post(gateway, token, key)).status == 202
    await asyncio.to_thread(broker.stop)
    try:
        doubtful = await post(gateway, token, "doubtful")
        assert doubtful.status == 503, doubtful.body
        stopping = time.monotonic()
        await gateway.stop()
        took = time.monotonic() - stopping
        print(f"stopped in {took:.1f} s with the log away")
        assert took <= STOP_BOUND + SLACK
    finally:
        await asyncio.to_thread(broker.start)

    await gateway.start()
    for key in [*before, "doubtful"]:
        reply = await post_until_accepted_reply(gateway, token, key)
        assert reply.headers.get("Idempotent-Replayed") == ("true" if key in before else None)
    # A commit's markers reach the partitions just after the commit is confirmed.
    names: list[str] = []
    for _ in range(100):
        names = [e.payload.name for e in await requested(gateway)]
        if len(names) >= len(before) + 1:
            break
        await asyncio.sleep(0.1)
    assert sorted(names) == sorted([*before, "doubtful"]), "every key exactly once"
    listed = await gateway.call("GET", "/v1/instances?limit=200", token=token)
    assert sorted(item["name"] for item in listed.body["items"]) == sorted(names)


async def post_until_accepted_reply(gateway: Gateway, token: str, key: str) -> Reply:
    """POST `key` until a 202 (a 503 while the new gateway still reconciles is retried)."""
    for _ in range(120):
        reply = await post(gateway, token, key)
        if reply.status == 202:
            return reply
        assert reply.status == 503, reply.body
        await asyncio.sleep(0.5)
    raise AssertionError(f"{key} never accepted")


async def test_a_write_in_doubt_that_committed_is_folded_by_the_next_gateway(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write answered 503 (in doubt) that did commit, and a gateway stopped before it could
    settle it: the next gateway folds it from the log, so the retried key replays it."""
    _, token = await gateway.tenant()
    runner = gateway.runner
    assert runner is not None

    async def never(head: object) -> None:  # the log seems away: recovery never starts
        await asyncio.Event().wait()

    monkeypatch.setattr(runner, "_new_writer", never)
    runner.commit_seconds = 0.0
    first = await post(gateway, token, "committed")
    assert first.status == 503, first.body
    assert runner.recovering
    for _ in range(100):  # it commits just after its 503
        if await requested(gateway):
            break
        await asyncio.sleep(0.1)
    [committed] = await requested(gateway)
    stopping = time.monotonic()
    await gateway.stop()
    assert time.monotonic() - stopping <= STOP_BOUND + SLACK

    await gateway.start()
    retry = await post_until_accepted_reply(gateway, token, "committed")
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.body["id"] == committed.aggregate_id
    assert [e.aggregate_id for e in await requested(gateway)] == [committed.aggregate_id]
