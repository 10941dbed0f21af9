"""The gateway while the log is away, without Kafka: readiness and staleness from the last
contact, own events folded only after their commit, a write in doubt refused and remembered.

The same on a real broker that is stopped and restarted: tests/integration/gateway/
test_log_outage.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.gateway.app import CONFIG, unstarted
from tests.unit.gateway.events import envelope, fold

from virga_eventlog import ChainHead, KafkaSettings
from virga_eventlog.writer import GENESIS
from virga_events import Envelope
from virga_events.catalog import api
from virga_gateway.logwatch import UNREACHABLE_AFTER_SECONDS, LogWatch
from virga_gateway.middleware import PROJECTION_AGE_HEADER
from virga_gateway.openapi import openapi_document
from virga_gateway.problems import log_unavailable
from virga_gateway.routes import ROUTES
from virga_gateway.runner import GatewayRunner, LogUnavailable
from virga_gateway.tokens import token_sha256
from virga_runtime import Emit

ADMIN = {"Authorization": f"Bearer {CONFIG.admin_token}"}
SETTINGS = KafkaSettings(bootstrap_servers="127.0.0.1:1")
Client = TestClient[web.Request, web.Application]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_log_is_unreachable_once_its_last_contact_is_too_old() -> None:
    clock = Clock()
    watch = LogWatch(SETTINGS, "t.api", "t-gateway", clock=clock)
    assert watch.reachable()
    assert watch.age() == 0
    clock.now += UNREACHABLE_AFTER_SECONDS - 0.1
    assert watch.reachable()
    clock.now += 0.1
    assert not watch.reachable()
    assert watch.age() == pytest.approx(UNREACHABLE_AFTER_SECONDS)
    watch.contact()
    assert watch.reachable()
    assert watch.age() == 0


def test_a_write_the_log_did_not_confirm_is_a_503_with_retry_after() -> None:
    problem = log_unavailable(7)
    assert problem.status == 503
    assert problem.slug == "log-unavailable"
    assert problem.headers == {"Retry-After": "7"}
    assert "Idempotency-Key" in problem.detail


def test_every_read_documents_the_projection_age_header() -> None:
    document = openapi_document(ROUTES)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            # Success, or a WebSocket's upgrade (101, the console).
            ok = next(s for s in operation["responses"] if s[0] in "12")
            headers = operation["responses"][ok].get("headers", {})
            assert (PROJECTION_AGE_HEADER in headers) == (method == "get"), (method, path)


@pytest.fixture
async def caught_up() -> AsyncIterator[tuple[GatewayRunner, Client, Clock]]:
    runner, app = unstarted()
    issued = api.TokenIssued(token_sha256=token_sha256(CONFIG.admin_token), role="admin")
    runner.state = fold(envelope(issued, "admin"))
    runner.ready.set()
    clock = Clock()
    runner.watch = LogWatch(SETTINGS, "t.api", "t-gateway", clock=clock)
    async with TestClient(TestServer(app)) as client:
        yield runner, client, clock


async def test_health_and_reads_follow_the_last_contact(
    caught_up: tuple[GatewayRunner, Client, Clock],
) -> None:
    runner, client, clock = caught_up
    async with client.get("/healthz") as health:
        assert health.status == 200
        assert await health.json() == {"status": "ready"}
    clock.now += UNREACHABLE_AFTER_SECONDS + 2.5
    async with client.get("/healthz") as health:
        assert health.status == 503
        assert await health.json() == {"status": "log-unreachable"}
    async with client.get("/v1/flavors", headers=ADMIN) as read:
        assert read.status == 200  # reads go on, from the projection
        assert read.headers[PROJECTION_AGE_HEADER] == str(int(UNREACHABLE_AFTER_SECONDS + 2.5))
    runner.watch.contact()
    async with client.get("/healthz") as health:
        assert health.status == 200
    runner.recovering = True  # a write in doubt: not ready until it is settled
    async with client.get("/healthz") as health:
        assert health.status == 503
    async with client.post("/v1/tenants", json={"name": "acme"}, headers=ADMIN) as write:
        assert write.status == 503
        assert write.headers["Retry-After"] == str(CONFIG.retry_after_seconds)
        assert (await write.json())["type"].endswith("/log-unavailable")
    assert "acme" not in {t.name for t in runner.state.tenants.values()}


# -- the append path, over a writer whose transactions the test controls ---------------------


@dataclass
class Txn:
    head: ChainHead
    delivered: list[object] = field(default_factory=list)

    async def append(self, topic: str, env: Envelope) -> Envelope:
        chained = env.chained(self.head.seq + 1, self.head.hash)
        self.head = ChainHead(chained.seq, f"h{chained.seq}")
        return chained

    async def append_raw(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        self.delivered.append(value)


@dataclass
class Writer:
    """Commits, fails or never answers; records whether the projection ran ahead of it."""

    runner: GatewayRunner
    outcome: str = "commit"
    head: ChainHead = GENESIS
    folded_before_commit: bool = False
    discarded: bool = False

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Txn]:
        txn = Txn(self.head)
        yield txn
        self.folded_before_commit = "tok-1" in self.runner.state.tokens
        if self.outcome == "fail":
            raise ConnectionError("broker gone")
        if self.outcome == "hang":
            await asyncio.Event().wait()
        self.head = txn.head

    async def discard(self, seconds: float) -> None:
        self.discarded = True


async def append_one(runner: GatewayRunner, outcome: str) -> tuple[Writer, asyncio.Future[object]]:
    writer = Writer(runner, outcome)
    runner._writer = writer  # type: ignore[assignment]
    runner.commit_seconds = 0.2
    issued = api.TokenIssued(token_sha256="ab" * 32, role="tenant")
    appended = asyncio.ensure_future(runner.append([Emit(issued, "tok-1", None)]))
    await asyncio.sleep(0)  # queued
    await runner._drain_appends()
    await asyncio.wait({appended}, timeout=1)
    return writer, appended  # type: ignore[return-value]


async def test_own_events_are_folded_only_once_committed() -> None:
    runner, _ = unstarted()
    writer, appended = await append_one(runner, "commit")
    assert not writer.folded_before_commit
    assert "tok-1" in runner.state.tokens
    assert appended.result()
    assert not runner.recovering
    assert writer.head.seq == 1


@pytest.mark.parametrize("outcome", ["fail", "hang"])
async def test_a_write_not_confirmed_in_time_is_in_doubt_and_never_shown(outcome: str) -> None:
    runner, _ = unstarted()
    writer, appended = await append_one(runner, outcome)
    assert isinstance(appended.exception(), LogUnavailable)
    assert "tok-1" not in runner.state.tokens  # a read never shows it
    assert runner.recovering
    assert not runner.log_reachable()
    assert runner._in_doubt is not None
    work, old, head = runner._in_doubt
    assert id(old) == id(writer)
    assert head == GENESIS  # the chain as last confirmed
    # Writes meanwhile are refused at once, without touching the log.
    later = asyncio.ensure_future(runner.append([]))
    await asyncio.sleep(0)
    await runner._drain_appends()
    await asyncio.wait({later}, timeout=1)
    assert isinstance(later.exception(), LogUnavailable)
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)


@pytest.mark.parametrize("outcome", ["fail", "hang"])
async def test_a_snapshot_the_log_does_not_confirm_is_a_warning_that_leaves_it_in_doubt(
    outcome: str,
) -> None:
    runner, _ = unstarted()
    writer = Writer(runner, outcome)
    runner._writer = writer  # type: ignore[assignment]
    runner.commit_seconds = 0.2
    await asyncio.wait_for(runner._snapshot(), 2)  # returns, never raises
    assert runner.recovering
    assert runner._in_doubt is not None
    work, old, head = runner._in_doubt
    assert id(old) == id(writer)
    assert head == GENESIS
    # The append loop is woken to settle it, without anything to append.
    waking = runner._appends.get_nowait()
    assert waking.emits == ()
    runner._appends.put_nowait(waking)
    await runner._drain_appends()
    assert isinstance(waking.done.exception(), LogUnavailable)
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)


async def test_closing_with_a_write_in_doubt_abandons_it_without_a_snapshot() -> None:
    runner, _ = unstarted()
    writer, appended = await append_one(runner, "hang")
    assert isinstance(appended.exception(), LogUnavailable)
    assert runner._in_doubt is not None
    work = runner._in_doubt[0]
    runner.events_applied += 1  # something a final snapshot would hold
    await asyncio.wait_for(runner.close(), 5)  # not waiting on the stuck transaction
    assert writer.discarded
    assert work.done()
    left: object = runner._in_doubt  # (mypy narrowed it above)
    assert left is None
    assert runner._applied_at_snapshot == 0  # none taken: the log is not there to take it
