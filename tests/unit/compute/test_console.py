"""The agent's side of consoles without Kafka or libvirt: its fold of tickets, the rule that
lets a session in (once, unexpired, this host's, this instance's), the gate that hands claims
to the runner, and the console server over the memory driver's echo console."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from tests.unit.compute.test_agent_core import HOST, ME, T0, scheduled

from virga_compute.config import ComputeConfig
from virga_compute.console.gate import ConsoleGate
from virga_compute.console.server import (
    LOG_KEY_HEADER,
    TICKET_HEADER,
    ConsoleServer,
    ticket_sha256,
)
from virga_compute.core.console import ConsoleOpen, open_session, refusal
from virga_compute.core.fold import evolve
from virga_compute.core.model import ComputeState
from virga_compute.core.snapshot import restore, snapshot
from virga_compute.core.spec import InstanceSpec
from virga_compute.drivers.console_log import remove_log, tail
from virga_compute.drivers.domain_xml import domain_name
from virga_compute.drivers.memory import MemoryComputeDriver
from virga_compute.service import on_signal
from virga_events import REGISTRY, Envelope, decode, encode, new_event
from virga_events.catalog.api import ConsoleTicketIssued
from virga_events.catalog.compute import ConsoleSessionOpened, HostRegistered, InstanceStarted
from virga_runtime import Emit

TICKET = "vct_secret"
DIGEST = ticket_sha256(TICKET)
CONFIG = ComputeConfig(host=HOST)


def issued(
    host: str = HOST, instance: str = "i-1", digest: str = DIGEST, seconds: float = 60
) -> Envelope:
    event = ConsoleTicketIssued(
        host=host,
        ticket_sha256=digest,
        expires_at=T0 + timedelta(seconds=seconds),
        principal="tenant:t-1",
    )
    return new_event(
        event, aggregate_id=instance, tenant_id="t-1", producer="gateway", occurred_at=T0
    )


def running(*more: Envelope) -> ComputeState:
    state = ComputeState(HOST)
    started = new_event(
        InstanceStarted(host=HOST), aggregate_id="i-1", tenant_id="t-1", producer=ME, occurred_at=T0
    )
    for envelope in (scheduled(), started, *more):
        state = evolve(state, envelope)
    return state


def claim(session: str = "s1", at: datetime = T0 + timedelta(seconds=1)) -> ConsoleOpen:
    return ConsoleOpen("i-1", DIGEST, session, at)


def test_a_ticket_opens_one_session_and_is_used_from_then_on() -> None:
    state = running(issued())
    assert refusal(state, "i-1", DIGEST, T0) is None
    [emit] = on_signal(CONFIG, state, claim())
    assert isinstance(emit, Emit)
    assert emit.payload == ConsoleSessionOpened(host=HOST, ticket_sha256=DIGEST, session_id="s1")
    assert (emit.aggregate_id, emit.tenant_id) == ("i-1", "t-1")
    state = evolve(state, new_event(emit.payload, aggregate_id="i-1", tenant_id="t-1", producer=ME))
    assert state.console_tickets[DIGEST].session_id == "s1"
    assert refusal(state, "i-1", DIGEST, T0) == "ticket already used"
    assert open_session(state, claim("s2")) == []


def test_expired_unknown_foreign_and_other_hosts_tickets_open_nothing() -> None:
    state = running(
        issued(), issued(host="host-2", digest="other"), issued(instance="i-9", digest="i9")
    )
    assert refusal(state, "i-1", DIGEST, T0 + timedelta(seconds=60)) == "ticket expired"
    assert refusal(state, "i-1", "made-up", T0) == "unknown ticket"
    assert refusal(state, "i-1", "other", T0) == "unknown ticket"  # issued for another host
    assert refusal(state, "i-1", "i9", T0) == "unknown ticket"  # another instance's
    assert refusal(running(), "i-1", DIGEST, T0) == "unknown ticket"  # the gateway's word alone
    assert open_session(state, claim(at=T0 + timedelta(seconds=61))) == []


def test_tickets_survive_a_snapshot() -> None:
    state = running(issued())
    assert restore(orjson.loads(orjson.dumps(snapshot(state)))).console_tickets == (
        state.console_tickets
    )


def test_a_host_registered_before_consoles_reads_as_serving_none() -> None:
    event = HostRegistered(rack="r", zone="z", vcpus=1, ram_mb=1, disk_gb=1, console_endpoint="x:1")
    wire = orjson.loads(encode(new_event(event, aggregate_id=HOST, tenant_id=None, producer=ME)))
    assert wire["version"] == 4
    later = (
        "console_endpoint",
        "migration_uri",
        "migration_address",
        "ceph_user",
        "ceph_secret_uuid",
    )
    for v2_and_later in later:
        del wire["payload"][v2_and_later]
    wire["version"] = 1
    old = decode(orjson.dumps(wire), REGISTRY)
    assert isinstance(old.payload, HostRegistered)
    assert old.payload.console_endpoint is None
    assert old.version == 4


async def test_the_gate_answers_a_claim_once_the_runner_asked_for_the_next_signal() -> None:
    gate = ConsoleGate()

    async def guests() -> AsyncIterator[str]:
        yield "power"
        await asyncio.Event().wait()

    signals = gate.signals(guests())
    assert await anext(signals) == "power"
    claiming = asyncio.create_task(gate.claim(claim(), within=5))
    assert await anext(signals) == claim()
    await asyncio.sleep(0.01)
    assert not claiming.done()  # decided only once the runner comes back for more
    following = asyncio.ensure_future(signals.__anext__())
    await asyncio.wait_for(claiming, 1)
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following


class FakeRunner:
    """The runner's part the server needs: its state, and deciding claims as signals."""

    def __init__(self, gate: ConsoleGate, state: ComputeState) -> None:
        self.state = state
        self._gate = gate

    async def run(self) -> None:
        async def nothing() -> AsyncIterator[object]:
            await asyncio.Event().wait()
            yield None

        async for signal in self._gate.signals(nothing()):
            for emit in on_signal(CONFIG, self.state, signal):
                assert isinstance(emit, Emit)
                self.state = evolve(
                    self.state,
                    new_event(emit.payload, aggregate_id="i-1", tenant_id="t-1", producer=ME),
                )


async def test_the_server_relays_the_echo_console_once_per_ticket() -> None:
    driver = MemoryComputeDriver()
    await driver.spawn(InstanceSpec("i-1", "vm", 1, 64))
    gate = ConsoleGate()
    now = datetime.now(UTC)
    ticket = ConsoleTicketIssued(
        host=HOST, ticket_sha256=DIGEST, expires_at=now + timedelta(seconds=60), principal="admin"
    )
    state = running(new_event(ticket, aggregate_id="i-1", tenant_id="t-1", producer="gateway"))
    runner = FakeRunner(gate, state)
    deciding = asyncio.create_task(runner.run())
    server = ConsoleServer(driver, gate, lambda: runner.state, ticket_wait_seconds=0.2)
    try:
        async with TestClient(TestServer(server.app())) as client:
            path = "/v1/consoles/i-1"
            async with client.ws_connect(path, headers={TICKET_HEADER: TICKET}) as ws:
                banner = await ws.receive(timeout=5)
                assert banner.type == WSMsgType.BINARY
                await ws.send_bytes(b"echo hi\r")
                assert (await ws.receive(timeout=5)).data == b"echo hi\r"
                for refused in (TICKET, "vct_made-up"):  # used, unknown: refused before upgrade
                    again = await client.get(path, headers={TICKET_HEADER: refused})
                    assert again.status == 403
                    assert (await again.json())["error"] in (
                        "ticket already used",
                        "unknown ticket",
                    )
            assert runner.state.console_tickets[DIGEST].session_id is not None
    finally:
        deciding.cancel()


async def test_the_log_is_served_to_the_key_holder_only_and_only_for_its_instances(
    tmp_path: Path,
) -> None:
    log = tmp_path / f"{domain_name('i-1')}.log"
    log.write_bytes(b"".join(f"line {n}\r\n".encode() for n in range(300)))
    server = ConsoleServer(
        MemoryComputeDriver(), ConsoleGate(), running, log_dir=str(tmp_path), log_key="k" * 32
    )
    async with TestClient(TestServer(server.app())) as client:
        path = "/v1/console-logs/i-1"
        for key in ("", "wrong", "k" * 31):
            refused = await client.get(path, headers={LOG_KEY_HEADER: key})
            assert refused.status == 403
        good = {LOG_KEY_HEADER: "k" * 32}
        got = await client.get(path, params={"lines": "3"}, headers=good)
        assert (await got.json())["lines"] == ["line 297", "line 298", "line 299"]
        assert len((await (await client.get(path, headers=good)).json())["lines"]) == 100
        for lines in ("0", "10001", "x"):
            bad = await client.get(path, params={"lines": lines}, headers=good)
            assert bad.status == 400
        other = await client.get("/v1/console-logs/i-9", headers=good)
        assert other.status == 404  # not placed here: nothing read, whatever the path holds
    keyless = ConsoleServer(MemoryComputeDriver(), ConsoleGate(), running, log_dir=str(tmp_path))
    async with TestClient(TestServer(keyless.app())) as client:
        assert (
            await client.get("/v1/console-logs/i-1", headers={LOG_KEY_HEADER: ""})
        ).status == 403


def test_a_log_is_read_from_its_end_and_removed_with_its_rotated_copies(tmp_path: Path) -> None:
    path = tmp_path / "virga-i-1.log"
    assert tail(str(path), 5) == []
    path.write_bytes(b"a\r\nb\nc")
    assert tail(str(path), 2) == ["b", "c"]
    for rotated in (".0", ".1", ".2"):
        (tmp_path / f"virga-i-1.log{rotated}").write_text("old")
    (tmp_path / "virga-i-10.log").write_text("another guest's")
    remove_log(str(path))
    assert [p.name for p in tmp_path.iterdir()] == ["virga-i-10.log"]
