"""Serial consoles through the whole stack on a real guest: Virga's guest image boots under
qemu:///system (TCG), its owner asks the gateway for a one-time ticket, opens the WebSocket it
names, reads the guest shell's prompt, types commands and reads their output, all relayed by
the gateway to the compute agent's console server and libvirt's console stream.

And every ticket that must not open a console does not: a used one, an expired one, one for
another instance, one the log never held (presented to the agent directly: it believes its fold
of the log, not whoever connects), and another tenant's request for one (404). A later session
takes the console over. Both the ticket and the session are events of the instance's history,
which never hold the ticket itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from tests.support.api import Api, ApiError
from tests.support.domains import remove_tagged
from tests.support.kafka import produce_events
from tests.support.ports import free_port
from tests.support.stack import HostSpec, Stack

from virga_devstack.guest import ensure_guest
from virga_events import new_event
from virga_events.catalog.api import ConsoleTicketIssued

pytestmark = [pytest.mark.kafka, pytest.mark.e2e, pytest.mark.libvirt, pytest.mark.timeout(600)]

URI = "qemu:///system"
HOST = "console-host"
TAG = f"e2e-console-{uuid.uuid4().hex[:8]}"
"""The name of this module's instances, which their domains carry in their metadata."""
TICKET_HEADER = "X-Virga-Console-Ticket"
PROMPT = b"/ # "
LOG_KEY = uuid.uuid4().hex


@pytest.fixture(scope="module")
def console_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack(
    libvirtd: None,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    console_port: int,
) -> Iterator[Stack]:
    guest = ensure_guest()
    stack = Stack(
        kafka_bootstrap,
        tmp_path_factory.mktemp("console-stack"),
        (HostSpec(HOST, "rack-1", libvirt_uri=URI),),
        guest_kernel=(str(guest.kernel), str(guest.initrd), guest.cmdline),
        compute_env={
            "VIRGA_CONSOLE_PORT": str(console_port),
            "VIRGA_CONSOLE_LOG_KEY": LOG_KEY,
            "VIRGA_STOP_GRACE_SECONDS": "10",
        },
        gateway_env={"VIRGA_CONSOLE_LOG_KEY": LOG_KEY},
    )
    try:
        with stack.running():
            yield stack
    finally:
        remove_tagged(URI, TAG)


@pytest.fixture
async def clients(stack: Stack) -> AsyncIterator[tuple[Api, Api, Api]]:
    """(admin, tenant A, tenant B)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        admin = Api(session, stack.gateway_url, stack.admin_token)
        _, a = await admin.create_tenant(f"console-a-{uuid.uuid4().hex[:6]}")
        _, b = await admin.create_tenant(f"console-b-{uuid.uuid4().hex[:6]}")
        yield admin, admin.as_token(a), admin.as_token(b)


async def read_until(ws: aiohttp.ClientWebSocketResponse, marker: bytes, seconds: float) -> bytes:
    """The console's output up to and including `marker`."""
    seen = b""
    deadline = time.monotonic() + seconds
    while marker not in seen:
        message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        assert message.type == aiohttp.WSMsgType.BINARY, (message, seen[-500:])
        seen += message.data
    return seen


async def events_until(api: Api, instance_id: str, kind: str, count: int) -> Any:
    """The instance's history once it holds `count` events of type `kind`."""
    deadline = time.monotonic() + 30
    while True:
        history = await api.call("GET", f"/v1/instances/{instance_id}/events")
        found = sum(entry["type"] == kind for entry in history)
        if found >= count or time.monotonic() > deadline:
            assert found == count, history
            return history
        await asyncio.sleep(0.2)


async def log_until(api: Api, path: str, text: str) -> list[str]:
    """The console log's lines once one of them holds `text`."""
    deadline = time.monotonic() + 30
    while True:
        lines: list[str] = (await api.call("GET", f"{path}?lines=1000"))["lines"]
        if any(text in line for line in lines) or time.monotonic() > deadline:
            assert any(text in line for line in lines), lines
            return lines
        await asyncio.sleep(0.2)


async def refused(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> int:
    """The status a console WebSocket is refused with."""
    with pytest.raises(aiohttp.WSServerHandshakeError) as refusal:
        async with session.ws_connect(url, **kwargs):
            pass
    return refusal.value.status


async def test_a_tenant_types_into_its_guests_serial_console(
    stack: Stack, clients: tuple[Api, Api, Api], console_port: int
) -> None:
    admin, a, b = clients
    mine = await a.create_instance(f"{TAG}-a")
    theirs = await b.create_instance(f"{TAG}-b")
    await a.wait_status([mine["id"]], {"RUNNING"}, seconds=180)
    await b.wait_status([theirs["id"]], {"RUNNING"}, seconds=180)
    path = f"/v1/instances/{mine['id']}/console"

    with pytest.raises(ApiError) as hidden:  # another tenant: no such instance
        await b.call("POST", path)
    assert hidden.value.status == 404

    before = datetime.now(UTC)
    ticket = await a.call("POST", path, expect=(201,))
    expires_at = datetime.fromisoformat(ticket["expires_at"])
    assert before < expires_at <= datetime.now(UTC) + timedelta(seconds=60)
    url: str = ticket["url"]
    secret = url.split("ticket=", 1)[1]
    agent = f"http://127.0.0.1:{console_port}/v1/consoles/{mine['id']}"

    async with aiohttp.ClientSession() as session:
        opened = time.monotonic()
        async with session.ws_connect(url) as ws:
            await ws.send_bytes(b"\r")
            await read_until(ws, PROMPT, 180)  # TCG: the guest may still be booting
            first_byte = time.monotonic() - opened
            await ws.send_bytes(b"echo hi-$((40+2))\r")
            assert b"hi-42" in await read_until(ws, b"hi-42", 30)
            await ws.send_bytes(b"uname\r")
            assert b"Linux" in await read_until(ws, b"Linux", 30)

            # Used: refused by the gateway, and by the agent itself given the same ticket.
            assert await refused(session, url) == 403
            async with session.get(agent, headers={TICKET_HEADER: secret}) as direct:
                assert direct.status == 403
                assert (await direct.json())["error"] == "ticket already used"
            # A ticket the log never held, straight to the agent: the gateway's word is not
            # enough, nor anybody's.
            async with session.get(agent, headers={TICKET_HEADER: "vct_forged"}) as forged:
                assert forged.status == 403
                assert (await forged.json())["error"] == "unknown ticket"

            # Another tenant's ticket (for its own instance) opens nothing here.
            other = await b.call("POST", f"/v1/instances/{theirs['id']}/console", expect=(201,))
            foreign = other["url"].replace(theirs["id"], mine["id"])
            assert await refused(session, foreign) == 403
            # An admin may open any console; a later session takes this one over.
            clicked = time.monotonic()
            second = await admin.call("POST", path, expect=(201,))
            async with session.ws_connect(second["url"]) as taking_over:
                await taking_over.send_bytes(b"\r")
                await read_until(taking_over, PROMPT, 30)
                click_to_prompt = time.monotonic() - clicked
                closed = await ws.receive(timeout=30)
                while closed.type == aiohttp.WSMsgType.BINARY:
                    closed = await ws.receive(timeout=30)
                assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                await taking_over.send_bytes(b"echo taken-$((1+1))\r")
                await read_until(taking_over, b"taken-2", 30)

        # Expired: a ticket the log holds, past its time, is refused by both.
        stale = "vct_expired-" + uuid.uuid4().hex
        issued = ConsoleTicketIssued(
            host=HOST,
            ticket_sha256=hashlib.sha256(stale.encode()).hexdigest(),
            expires_at=datetime.now(UTC) - timedelta(seconds=1),
            principal="admin",
        )
        envelope = new_event(issued, aggregate_id=mine["id"], tenant_id=None, producer="gateway")
        await produce_events(stack.bootstrap, f"{stack.namespace}.api", [envelope])
        async with session.get(agent, headers={TICKET_HEADER: stale}) as expired:
            assert expired.status == 403
            assert (await expired.json())["error"] == "ticket expired"
        assert await refused(session, url.replace(secret, stale)) == 403

    # The tenant's and the admin's (not B's, for B's instance; the expired one was written
    # beside the gateway, which folds its own topic from its own appends while it runs).
    history = await events_until(a, mine["id"], "ConsoleTicketIssued", 2)
    # What was typed and answered is in the console log too (virtlogd writes it as it goes).
    log_path = f"/v1/instances/{mine['id']}/console-log"
    logged = await log_until(a, log_path, "hi-42")
    assert any(line.startswith("virga-guest: up") for line in logged), logged
    assert len((await a.call("GET", f"{log_path}?lines=3"))["lines"]) == 3
    for lines in ("0", "10001", "x"):
        with pytest.raises(ApiError) as bad:
            await a.call("GET", f"{log_path}?lines={lines}")
        assert bad.value.status == 400
    with pytest.raises(ApiError) as foreign:
        await b.call("GET", log_path)
    assert foreign.value.status == 404
    async with aiohttp.ClientSession() as session:  # the agent hands no log without the key
        log_url = f"http://127.0.0.1:{console_port}/v1/console-logs/{mine['id']}"
        async with session.get(log_url) as keyless:
            assert keyless.status == 403
    log_file = stack.run_dir / "instances" / HOST / "console" / f"virga-{mine['id']}.log"
    assert log_file.exists()
    types = [entry["type"] for entry in history]
    assert types.count("ConsoleSessionOpened") == 2
    assert secret not in str(history)
    print(
        f"console: first prompt {first_byte:.2f} s after connecting (the guest still booting);"
        f" {click_to_prompt:.2f} s from POST to the prompt of a booted guest"
    )

    await a.call("POST", f"/v1/instances/{mine['id']}/actions", {"action": "stop"})
    await a.wait_status([mine["id"]], {"STOPPED"}, seconds=120)
    with pytest.raises(ApiError) as stopped:
        await a.call("POST", path)
    assert stopped.value.status == 409
    for api, instance in ((a, mine), (b, theirs)):
        await api.call("DELETE", f"/v1/instances/{instance['id']}")
    await a.wait_status([mine["id"]], {"DELETED"}, seconds=120)
    await b.wait_status([theirs["id"]], {"DELETED"}, seconds=120)
    assert not log_file.exists()  # removed with the domain
