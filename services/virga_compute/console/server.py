"""The agent's console server: a small aiohttp WebSocket server the gateway relays to.

`GET /v1/consoles/{instance_id}` with the ticket in the `X-Virga-Console-Ticket` header (never
in the URL, which ends up in logs) upgrades to a WebSocket carrying the guest's serial console:
binary frames both ways, guest output from here, typed input to here. Before upgrading, the
agent checks the ticket against its own fold of the log (`core.console.refusal`): known for
this host and this instance, unexpired, unused. It waits for the ticket to reach the fold for
`ticket_wait_seconds` (the gateway appended it a moment before), then claims it through the
runner (`gate.ConsoleGate`: ConsoleSessionOpened is appended, the ticket is used) and only then
opens the console. A refusal is a 403 whose body says why; the gateway passes it on.

A second session on the same console takes it over (the driver opens it with force, as
`virsh console --force`): the first session's WebSocket is closed.

`GET /v1/console-logs/{instance_id}?lines=N` answers the last lines of an instance's serial
log (`drivers/console_log.py`) as JSON, to the gateway only: the request must carry the key
the gateway and the agents share (`X-Virga-Console-Log-Key`, VIRGA_CONSOLE_LOG_KEY), compared
in constant time. Without a key configured the agent serves no log at all. Only instances
this agent's fold places here are served; any other is a 404.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import structlog
from aiohttp import WSMsgType, web

from virga_compute.console.gate import ConsoleGate
from virga_compute.core.console import ConsoleOpen, refusal, session_of
from virga_compute.core.model import ComputeState
from virga_compute.drivers.base import ComputeDriver, ConsoleStream, DriverError
from virga_compute.drivers.console_log import tail
from virga_compute.drivers.domain_xml import domain_name
from virga_runtime.relay import until_first_ends

log = structlog.get_logger(__name__)

TICKET_HEADER = "X-Virga-Console-Ticket"
LOG_KEY_HEADER = "X-Virga-Console-Log-Key"
MAX_LINES = 10_000
POLL_SECONDS = 0.05
CLAIM_SECONDS = 10.0
"""How long a claim waits for the runner to decide it (a Kafka transaction)."""


def ticket_sha256(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class ConsoleServer:
    """Serves the consoles of this host's instances to holders of a ticket."""

    def __init__(
        self,
        driver: ComputeDriver,
        gate: ConsoleGate,
        state: Callable[[], ComputeState],
        *,
        ticket_wait_seconds: float = 5.0,
        log_dir: str | None = None,
        log_key: str | None = None,
    ) -> None:
        self._driver = driver
        self._gate = gate
        self._state = state
        self._wait = ticket_wait_seconds
        self._log_dir = log_dir
        self._log_key = log_key
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v1/consoles/{instance_id}", self.console)
        app.router.add_get("/v1/console-logs/{instance_id}", self.console_log)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        log.info("console_server_started", host=host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _known(self, digest: str) -> None:
        """Wait (bounded) until the ticket of this hash is in the fold."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        # The fold is pure and signals nothing: the state is looked at until the ticket shows.
        while digest not in self._state().console_tickets and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)

    async def console(self, request: web.Request) -> web.StreamResponse:
        instance_id = request.match_info["instance_id"]
        digest = ticket_sha256(request.headers.get(TICKET_HEADER, ""))
        bound = log.bind(instance_id=instance_id, ticket_sha256=digest)
        await self._known(digest)
        reason = refusal(self._state(), instance_id, digest, datetime.now(UTC))
        if reason is None:
            session_id = str(uuid.uuid4())
            signal = ConsoleOpen(instance_id, digest, session_id, datetime.now(UTC))
            await self._gate.claim(signal, CLAIM_SECONDS)
            if session_of(self._state(), digest) != session_id:
                reason = "ticket already used"
        if reason is not None:
            bound.info("console_refused", reason=reason)
            return web.json_response({"error": reason}, status=403)
        try:
            stream = await self._driver.open_console(instance_id)
        except DriverError as exc:
            bound.warning("console_unavailable", error=str(exc))
            return web.json_response({"error": f"no console: {exc}"}, status=409)
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        bound.info("console_session_opened", session_id=session_id)
        try:
            await relay(ws, stream)
        finally:
            await stream.close()
            await ws.close()
            bound.info("console_session_closed", session_id=session_id)
        return ws

    async def console_log(self, request: web.Request) -> web.Response:
        given = request.headers.get(LOG_KEY_HEADER, "").encode()
        if self._log_key is None or not hmac.compare_digest(given, self._log_key.encode()):
            return web.json_response({"error": "a console log needs the gateway's key"}, status=403)
        instance_id = request.match_info["instance_id"]
        if instance_id not in self._state().instances or self._log_dir is None:
            return web.json_response({"error": f"no instance {instance_id} here"}, status=404)
        try:
            lines = int(request.query.get("lines", "100"))
        except ValueError:
            lines = -1
        if not 1 <= lines <= MAX_LINES:
            return web.json_response({"error": f"lines: 1 to {MAX_LINES}"}, status=400)
        path = f"{self._log_dir.rstrip('/')}/{domain_name(instance_id)}.log"
        found = await asyncio.to_thread(tail, path, lines)
        return web.json_response({"lines": found})


async def relay(ws: web.WebSocketResponse, stream: ConsoleStream) -> None:
    """Guest output to the socket, socket input to the guest, until either side ends."""

    async def outward() -> None:
        while data := await stream.read():
            await ws.send_bytes(data)

    async def inward() -> None:
        async for message in ws:
            if message.type == WSMsgType.BINARY:
                await stream.write(message.data)
            elif message.type == WSMsgType.TEXT:
                await stream.write(message.data.encode())
            else:
                break

    await until_first_ends(outward(), inward(), quiet=(DriverError, ConnectionError))
