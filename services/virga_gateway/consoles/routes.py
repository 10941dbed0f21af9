"""Serial consoles: a one-time ticket (POST), and the WebSocket it opens (GET, relayed).

The ticket travels in the URL's query (`?ticket=`): the URL is then all a client needs (a
browser's WebSocket cannot set headers), and the gateway never logs query strings (its request
log names the path only). A ticket that did reach some log is worth little: it opens one
session, within its short validity, and a used or expired one opens nothing. Towards the agent
the ticket goes in a header (`X-Virga-Console-Ticket`), never in a URL.

The gateway refuses what its projection already knows to be wrong (unknown, another
instance's, used, expired: 403) without bothering the agent, and a request that is no
WebSocket upgrade (400) without spending the ticket. The agent decides: it checks the ticket
against its own fold of the log and records the session (ConsoleSessionOpened) before relaying
a byte; its refusal is passed on as a 403.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
import structlog
from aiohttp import WSMsgType, web

from virga_gateway.consoles import commands
from virga_gateway.consoles.model import derive_ticket
from virga_gateway.consoles.queries import agent_endpoint, log_endpoint
from virga_gateway.consoles.views import ConsoleLogView, ConsoleTicketView
from virga_gateway.context import Call
from virga_gateway.problems import Problem, conflict, forbidden, invalid
from virga_gateway.routing import QueryParam, Route, int_query, json_response
from virga_gateway.writes import commit
from virga_runtime.relay import until_first_ends

log = structlog.get_logger(__name__)


TICKET_HEADER = "X-Virga-Console-Ticket"
LOG_KEY_HEADER = "X-Virga-Console-Log-Key"
MAX_LOG_LINES = 10_000
CONNECT_SECONDS = 20.0
"""How long the agent may take to let a session in (it waits for the ticket to reach its
fold, then records the session in a transaction)."""


async def open_relay(
    request: web.Request, endpoint: str, instance_id: str, ticket: str
) -> web.WebSocketResponse:
    """Connect to the agent (its refusal raised as a Problem), then upgrade `request` and
    relay until either side closes."""
    client = web.WebSocketResponse(heartbeat=30)
    if not client.can_prepare(request).ok:
        raise invalid(400, "Upgrade", "a WebSocket upgrade is expected")
    url = f"http://{endpoint}/v1/consoles/{instance_id}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            agent = await asyncio.wait_for(
                session.ws_connect(url, headers={TICKET_HEADER: ticket}, heartbeat=30),
                CONNECT_SECONDS,
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise _refused(exc.status, exc.message) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("console_agent_unreachable", endpoint=endpoint, error=str(exc))
            raise _unreachable() from None
        async with agent:
            await client.prepare(request)
            log.info("console_relay_opened", instance_id=instance_id, endpoint=endpoint)
            try:
                await _pump(client, agent)
            finally:
                await client.close()
                log.info("console_relay_closed", instance_id=instance_id)
    return client


def _unreachable() -> Problem:
    return Problem(502, "bad-gateway", "Bad Gateway", "the host's agent is unreachable")


def _refused(status: int, message: str) -> Problem:
    if status == 403:
        return forbidden("the host's agent refused the console ticket")
    if status == 409:
        return conflict("the instance's console cannot be opened now")
    return Problem(502, "bad-gateway", "Bad Gateway", f"the host's agent answered {status}")


async def _pump(client: web.WebSocketResponse, agent: aiohttp.ClientWebSocketResponse) -> None:
    async def outward() -> None:  # guest output
        async for message in agent:
            if message.type != WSMsgType.BINARY:
                break
            await client.send_bytes(message.data)

    async def inward() -> None:  # what the tenant types
        async for message in client:
            if message.type == WSMsgType.BINARY:
                await agent.send_bytes(message.data)
            elif message.type == WSMsgType.TEXT:
                await agent.send_bytes(message.data.encode())
            else:
                break

    await until_first_ends(outward(), inward(), quiet=(ConnectionError,))


def _ws_base(request: web.Request) -> str:
    return f"{'wss' if request.secure else 'ws'}://{request.host}"


async def request_console(request: web.Request, call: Call) -> web.Response:
    instance_id = request.match_info["id"]
    config = call.gateway.config
    secret, base = config.token_secret, _ws_base(request)

    def reveal(stored: dict[str, Any]) -> dict[str, Any]:
        # Only the hash was stored: a replay re-derives the same ticket from its id.
        ticket = derive_ticket(secret, stored["id"])
        return {**stored, "url": commands.console_url(base, instance_id, ticket)}

    return await commit(
        request,
        call,
        lambda state, now: commands.issue_ticket(
            state,
            call.caller,
            instance_id,
            ticket_id=str(uuid.uuid4()),
            now=now,
            secret=secret,
            valid_seconds=config.console_ticket_seconds,
            base_url=base,
        ),
        reveal=reveal,
        guard=f"instance:{instance_id}",
    )


async def console_socket(request: web.Request, call: Call) -> web.StreamResponse:
    instance_id = request.match_info["id"]
    ticket = request.query.get("ticket", "")
    endpoint = agent_endpoint(call.gateway.state, instance_id, ticket, datetime.now(UTC))
    return await open_relay(request, endpoint, instance_id, ticket)


async def console_log(request: web.Request, call: Call) -> web.Response:
    instance_id = request.match_info["id"]
    lines = int_query(request, "lines", 100, 1, MAX_LOG_LINES)
    endpoint = log_endpoint(call.gateway.state, call.caller, instance_id)
    key = call.gateway.config.console_log_key
    if key is None:
        raise conflict("this cloud keeps no console logs (VIRGA_CONSOLE_LOG_KEY is unset)")
    url = f"http://{endpoint}/v1/console-logs/{instance_id}"
    timeout = aiohttp.ClientTimeout(total=CONNECT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url, params={"lines": str(lines)}, headers={LOG_KEY_HEADER: key}) as got,
        ):
            if got.status == 404:  # the agent has not folded the instance's placement yet
                return json_response(ConsoleLogView(lines=[]))
            if got.status != 200:
                raise _refused(got.status, "")
            found = await got.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("console_log_unreachable", endpoint=endpoint, error=str(exc))
        raise _unreachable() from None
    return json_response(ConsoleLogView(lines=[str(line) for line in found["lines"]]))


_TICKET = QueryParam(
    "ticket",
    {"type": "string", "minLength": 1, "maxLength": 128},
    "The one-time ticket of POST /v1/instances/{id}/console.",
    required=True,
)

ROUTES = [
    Route(
        "POST", "/v1/instances/{id}/console", request_console,
        operation_id="requestInstanceConsole",
        summary="A one-time ticket to the instance's serial console: the WebSocket URL to open"
        " (valid once, for a short time; only its hash is recorded, as ConsoleTicketIssued)",
        tag="instances", access="tenant", status=201, response=ConsoleTicketView,
        errors=(409,),  # not RUNNING, or its host serves no console
    ),
    Route(
        "GET", "/v1/instances/{id}/console/ws", console_socket,
        operation_id="openInstanceConsole",
        summary="The serial console as a WebSocket (binary frames both ways), relayed to the"
        " agent of the instance's host, which checks the ticket against the log; a later"
        " session takes the console over",
        tag="instances", access="public", status=101, query=(_TICKET,),
        errors=(400, 403, 409, 502),
    ),
    Route(
        "GET", "/v1/instances/{id}/console-log", console_log,
        operation_id="getInstanceConsoleLog",
        summary="The last lines of the instance's serial output, as its host's agent keeps it"
        " (virtlogd's file, capped and rotated there)",
        tag="instances", access="tenant", status=200, response=ConsoleLogView,
        query=(QueryParam("lines", {"type": "integer", "minimum": 1, "maximum": MAX_LOG_LINES},
                          "How many of the last lines (default 100)."),),
        errors=(400, 409, 502),
    ),
]  # fmt: skip
